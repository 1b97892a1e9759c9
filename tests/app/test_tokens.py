"""Tokens: open until one exists; then 401 without/with a bad token, 403 for a viewer's write."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select

from app.core.security import create_token, hash_token, revoke_token
from contract.models import ApiToken


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_open_without_tokens(client, make_vm):
    vm = make_vm()
    assert client.get("/api/auth").json() == {"tokens_required": False, "role": "editor"}
    assert client.get("/api/vms").status_code == 200
    assert client.put(f"/api/vms/{vm.id}/workload", json={"doorbells": []}).status_code == 200


def test_roles_once_a_token_exists(client, make_vm, db):
    vm = make_vm()
    viewer = create_token(db, "v", "viewer")
    editor = create_token(db, "e", "editor")
    stored = db.scalars(select(ApiToken.token_hash)).all()
    assert hash_token(viewer) in stored and viewer not in stored  # only the hash is kept
    write = f"/api/vms/{vm.id}/workload"
    # reads
    assert client.get("/api/vms").status_code == 401
    assert client.get("/api/vms").headers["www-authenticate"] == "Bearer"
    assert client.get("/api/vms", headers=bearer("ios_wrong")).status_code == 401
    assert client.get("/api/vms", headers={"Authorization": viewer}).status_code == 401
    assert client.get("/api/vms", headers=bearer(viewer)).status_code == 200
    assert client.get("/api/vms", headers=bearer(editor)).status_code == 200
    db.expire_all()
    used = {t.name: t.last_used_at for t in db.scalars(select(ApiToken))}
    assert used["v"] is not None and used["e"] is not None  # recorded, at most once a minute
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(viewer)).status_code == 200
    # writes
    assert client.put(write, json={"doorbells": []}).status_code == 401
    response = client.put(write, json={"doorbells": []}, headers=bearer(viewer))
    assert response.status_code == 403 and "editor" in response.json()["detail"]
    assert client.put(write, json={"doorbells": []}, headers=bearer(editor)).status_code == 200
    assert (
        client.post(
            "/api/benchmarks", json={"writes": 1, "repeat": 1}, headers=bearer(viewer)
        ).status_code
        == 403
    )
    # who am I, and health stays open for probes
    assert client.get("/api/auth", headers=bearer(viewer)).json() == {
        "tokens_required": True,
        "role": "viewer",
    }
    assert client.get("/api/auth").json() == {"tokens_required": True, "role": None}
    assert client.get("/api/health").status_code == 200
    # revoked: 401 from then on
    assert revoke_token(db, "v")
    assert client.get("/api/vms", headers=bearer(viewer)).status_code == 401


def test_token_cli_create_list_revoke(app_env):
    env = {**os.environ, "IOSIGNAL_DATABASE_URL": app_env}
    cli = [sys.executable, "-m", "cli.main", "token"]

    def run(*args):
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=60)

    made = run("create", "--role", "editor", "ci")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ios_") and len(token) > 40
    listed = run("list")
    assert "ci\teditor\tcreated " in listed.stdout and "never used" in listed.stdout
    assert token not in listed.stdout
    assert run("create", "--role", "editor", "ci").returncode == 1  # name taken
    bad = run("create", "--role", "admin", "x")
    assert bad.returncode == 1 and "role must be one of viewer, editor" in bad.stderr
    assert run("revoke", "ci").returncode == 0
    assert run("revoke", "ci").returncode == 1


def test_open_listen_refused_until_a_token_exists(app_env, db):
    from app.core.security import refuse_open_listen

    env = {**os.environ, "IOSIGNAL_DATABASE_URL": app_env}
    cmd = [sys.executable, "-m", "cli.main", "api", "--host", "0.0.0.0", "--port", "1"]
    refused = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "iosignal token create --role editor NAME" in refused.stderr
    refuse_open_listen("127.0.0.1")  # loopback is always fine: returns
    create_token(db, "ops", "editor")
    refuse_open_listen("0.0.0.0")  # a token exists now: returns instead of exiting


def test_stream_token_is_redacted_in_the_access_log():
    import logging

    from app.core.security import RedactTokens

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/stream?vm_id=1&token=ios_secret&x=1", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert "ios_secret" not in record.getMessage()
    assert "token=[redacted]&x=1" in record.getMessage()
