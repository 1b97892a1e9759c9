"""Dashboards resource: CRUD, slugs (derived, unique, 409), export/import, Overview, roles."""

from __future__ import annotations

from app.core.security import create_token

PANEL = {
    "title": "doorbells",
    "metric": "signals",
    "series": [{"ioeventfd_id": 1}, {"ioeventfd_id": 2}],
    "aggregate": "none",
}
BOARD = {
    "name": "Team Doorbells!",
    "range": {"since": "-30m", "until": None},
    "refresh_s": 5,
    "panels": [
        PANEL,
        {
            "title": "exits",
            "metric": "exits",
            "series": [{"vm_id": 1, "space": "mmio", "addr": "0xd0000000", "len": 4}],
            "aggregate": "sum",
        },
    ],
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_fresh_database_offers_overview_until_others_exist(client):
    listed = client.get("/api/dashboards").json()
    assert [d["slug"] for d in listed] == ["overview"]
    overview = client.get("/api/dashboards/overview").json()
    assert overview["name"] == "Overview" and len(overview["panels"]) == listed[0]["panels"] > 0
    assert client.post("/api/dashboards", json=BOARD).status_code == 201
    assert client.delete("/api/dashboards/overview").status_code == 204
    assert [d["slug"] for d in client.get("/api/dashboards").json()] == ["team-doorbells"]
    # only once no dashboard exists at all does the Overview come back
    assert client.delete("/api/dashboards/team-doorbells").status_code == 204
    assert [d["slug"] for d in client.get("/api/dashboards").json()] == ["overview"]


def test_create_read_replace_delete(client):
    made = client.post("/api/dashboards", json=BOARD)
    assert made.status_code == 201, made.text
    body = made.json()
    assert made.headers["location"] == "/api/dashboards/team-doorbells"
    assert body["slug"] == "team-doorbells" and body["name"] == BOARD["name"]
    assert body["range"] == {"since": "-30m", "until": None} and body["refresh_s"] == 5
    exits_ref = body["panels"][1]["series"][0]
    assert exits_ref["addr"] == 0xD0000000 and exits_ref["len"] == 4  # "0x..." stored as a number
    assert client.get("/api/dashboards/team-doorbells").json() == body
    summary = next(d for d in client.get("/api/dashboards").json() if d["id"] == body["id"])
    assert summary["panels"] == 2 and summary["name"] == BOARD["name"]
    changed = {**BOARD, "name": "Renamed", "slug": "renamed", "panels": [PANEL]}
    replaced = client.put("/api/dashboards/team-doorbells", json=changed)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["slug"] == "renamed" and len(replaced.json()["panels"]) == 1
    assert replaced.json()["created_at"] == body["created_at"]
    assert client.get("/api/dashboards/team-doorbells").status_code == 404
    # a PUT without slug keeps the slug it has
    kept = client.put("/api/dashboards/renamed", json={**BOARD, "name": "Again"}).json()
    assert kept["slug"] == "renamed" and kept["name"] == "Again"
    assert client.delete("/api/dashboards/renamed").status_code == 204
    gone = client.get("/api/dashboards/renamed")
    assert gone.status_code == 404 and gone.json()["errno"] == "ENOENT"
    assert client.delete("/api/dashboards/renamed").status_code == 404


def test_slugs_derive_unique_and_clash_with_409(client):
    first = client.post("/api/dashboards", json={"name": "Ünïcode  Board"}).json()
    second = client.post("/api/dashboards", json={"name": "unicode board"}).json()
    assert (first["slug"], second["slug"]) == ("unicode-board", "unicode-board-2")
    clash = client.post("/api/dashboards", json={"name": "x", "slug": "unicode-board"})
    assert clash.status_code == 409
    assert clash.json() == {"detail": "slug 'unicode-board' is taken", "errno": "EEXIST"}
    rename = client.put(
        "/api/dashboards/unicode-board-2", json={"name": "y", "slug": first["slug"]}
    )
    assert rename.status_code == 409 and rename.json()["errno"] == "EEXIST"
    assert client.post("/api/dashboards", json={"name": "!!!"}).json()["slug"] == "dashboard"
    long = client.post("/api/dashboards", json={"name": "a" * 120}).json()["slug"]
    again = client.post("/api/dashboards", json={"name": "a" * 120}).json()["slug"]
    assert long == "a" * 64 and again == "a" * 62 + "-2"


def test_export_then_import_gives_the_same_dashboard_under_a_new_id(client):
    made = client.post("/api/dashboards", json=BOARD).json()
    export = client.get("/api/dashboards/team-doorbells", params={"download": 1})
    assert export.headers["content-disposition"] == 'attachment; filename="team-doorbells.json"'
    exported = export.json()
    assert exported == made
    assert client.post("/api/dashboards", json=exported).status_code == 409  # its slug is ours
    imported = client.post("/api/dashboards", json={**exported, "slug": "copy"}).json()
    assert imported["id"] != made["id"] and imported["slug"] == "copy"
    strip = ("id", "slug", "created_at", "updated_at")
    assert {k: v for k, v in imported.items() if k not in strip} == {
        k: v for k, v in made.items() if k not in strip
    }


def test_bad_dashboards_are_422_naming_the_rule(client):
    cases = [
        ({"name": ""}, "name"),
        ({"name": "n" * 121}, "name"),
        ({"name": "ok", "slug": "Bad Slug"}, "slug must be 1 to 64 characters"),
        ({"name": "ok", "slug": "-x"}, "slug must be"),
        ({"name": "ok", "slug": "s" * 65}, "slug"),
        ({"name": "ok", "range": {"since": "yesterday"}}, "range.since"),
        ({"name": "ok", "refresh_s": 0.5}, "refresh_s"),
        ({"name": "ok", "panels": [PANEL] * 25}, "panels"),
        ({"name": "ok", "panels": [{**PANEL, "title": "t" * 121}]}, "title"),
        ({"name": "ok", "panels": [{**PANEL, "metric": "cpu"}]}, "metric"),
        ({"name": "ok", "panels": [{**PANEL, "series": [{"ioeventfd_id": 1}] * 49}]}, "series"),
        (
            {"name": "ok", "panels": [{**PANEL, "series": [{"vm_id": 1}]}]},
            "series[0] of a signals panel needs ioeventfd_id",
        ),
        (
            {"name": "ok", "panels": [{"metric": "exits", "series": [{"vm_id": 1, "len": 3}]}]},
            "len must be one of 0, 1, 2, 4, 8",
        ),
        ({"name": "ok", "color": "red"}, "color"),
        ({"name": "ok\x00"}, "NUL"),
    ]
    for body, rule in cases:
        response = client.post("/api/dashboards", json=body)
        assert response.status_code == 422, body
        assert rule in response.json()["detail"] and response.json()["errno"] == "EINVAL", body
    names = [d["slug"] for d in client.get("/api/dashboards").json()]
    assert names == ["overview"]  # nothing stored


def test_viewers_read_and_get_403_on_every_write(client, db):
    editor = create_token(db, "alice", "editor")
    viewer = create_token(db, "bob", "viewer")
    made = client.post("/api/dashboards", json=BOARD, headers=bearer(editor))
    assert made.status_code == 201
    url = "/api/dashboards/team-doorbells"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=bearer(viewer)).json() == made.json()
    assert client.get(f"{url}/data", headers=bearer(viewer)).status_code == 200
    adhoc = {"since": "-5m", "panels": [PANEL]}
    assert client.post("/api/panels/data", json=adhoc, headers=bearer(viewer)).status_code == 200
    assert client.post("/api/panels/data", json=adhoc).status_code == 401
    for method, path, body in (
        ("POST", "/api/dashboards", {**BOARD, "slug": "other"}),
        ("PUT", url, BOARD),
        ("DELETE", url, None),
    ):
        response = client.request(method, path, json=body, headers=bearer(viewer))
        assert response.status_code == 403, (method, response.text)
        assert "editor" in response.json()["detail"]
    assert client.get(url, headers=bearer(viewer)).json() == made.json()
