"""Every command of `iosignal` explains itself."""

import pytest
from typer.testing import CliRunner

from cli.main import cli

COMMANDS = ["run", "api", "worker", "observe", "migrate", "bench", "loadbench", "applybench"]


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    command = next(c for c in cli.registered_commands if (c.name or c.callback.__name__) == name)
    first_line = command.callback.__doc__.splitlines()[0]
    assert first_line.split(":")[0][:30] in " ".join(result.output.split())


def test_migrate_creates_a_sqlite_database_at_head(tmp_path, monkeypatch):
    from sqlalchemy import create_engine, inspect

    from contract.config import get_settings

    url = f"sqlite:///{tmp_path / 'sub' / 'x.db'}"
    monkeypatch.setenv("IOSIGNAL_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"vms", "ioeventfds", "workloads", "alembic_version"} <= tables
