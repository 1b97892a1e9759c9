"""grafana/iosignal-fleet.json is a Grafana dashboard model over the observers' /metrics, with a
host and a VM variable every guest panel follows (that its queries answer from a real scrape is
tests/observer/test_prometheus.py's)."""

from __future__ import annotations

import json
from pathlib import Path

BOARD = Path(__file__).resolve().parents[2] / "grafana" / "iosignal-fleet.json"


def test_the_fleet_board_is_a_grafana_dashboard_model() -> None:
    board = json.loads(BOARD.read_text())
    assert board["uid"] == "iosignal-fleet" and board["title"] and board["schemaVersion"] >= 30
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert {"host", "vm"} <= set(variables)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) >= 8
    for panel in board["panels"]:
        assert panel["type"] in ("timeseries", "stat") and panel["title"] and panel["description"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] == "${datasource}"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)) and all(t["expr"] for t in panel["targets"])


def test_every_guest_query_follows_the_host_and_vm_variables() -> None:
    board = json.loads(BOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    for expr in exprs:
        if "iosignal_guest_" in expr:
            assert 'host=~"$host"' in expr and 'pid=~"$vm"' in expr, expr
        elif "iosignal_observer_" in expr:
            assert 'host=~"$host"' in expr, expr
    titles = {p["title"] for p in board["panels"]}
    assert {
        "Hosts observed",
        "VMs running",
        "In-kernel share",
        "Doorbells that still exit",
    } <= titles
