"""`iosignal loadbench --hosts`: a small fleet of simulated observers writes through the
observer's own writer into one PostgreSQL, and the figures it prints add up (a short run;
speed is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from contract.models import Feed, Observer, Sample, Series, Vm


def test_a_small_fleet_writes_every_tick_and_reports_it(empty_postgres_url: str) -> None:
    command = [sys.executable, "-m", "cli.main", "loadbench", "--hosts", "3", "--vms", "4"]
    command += ["--doorbells", "5", "--seconds", "4", "--processes", "2", "--json"]
    command += ["--database-url", empty_postgres_url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    [run] = json.loads(out.stdout.strip().splitlines()[-1])["runs"]
    assert (run["hosts"], run["vms"], run["doorbells"]) == (3, 12, 60)
    assert run["ticks"] >= 3 * 3 and run["errors"] == 0 and run["dropped"] == 0
    assert run["unwritten"] == 0 and run["rows_inserted_per_s"] > 0
    assert 0 < run["writer_cpu_per_host_pct"] <= run["writer_cpu_per_host_max_pct"]
    engine = create_engine(empty_postgres_url)
    with Session(engine) as db:
        hosts = db.scalars(select(Vm.host).distinct().order_by(Vm.host)).all()
        assert hosts == ["fleet-0000", "fleet-0001", "fleet-0002"]
        assert db.scalar(select(func.count()).select_from(Vm)) == 12
        assert db.scalar(select(func.count()).select_from(Observer)) == 3
        series = select(func.count()).select_from(Series).where(Series.feed == int(Feed.OBSERVED))
        assert db.scalar(series) == 60
        # a packed row per VM and tick (the ticker's ticks plus each host's last collect), its
        # sums beside it
        rows = db.scalar(select(func.count()).select_from(Sample))
        assert rows == 4 * (run["ticks"] + 3)
        assert db.scalar(select(func.count()).where(Sample.sum_first.is_(None))) == 0
    engine.dispose()
