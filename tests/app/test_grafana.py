"""grafana/iosignal.json: a Grafana dashboard model whose PromQL reads only series that a real
/metrics answer has, by labels those series carry."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from promql import metric_names, selector_labels
from support import add_exit

from contract.models import Ioeventfd, utcnow

BOARD = Path(__file__).resolve().parents[2] / "grafana" / "iosignal.json"


def test_metric_names_are_parsed_as_promql_reads_them():
    expr = 'sum by (vm, id) (rate(a_total{vm=~"$vm"}[5m])) / ignoring(x) b_seconds'
    assert metric_names(expr) == {"a_total", "b_seconds"}
    assert selector_labels(expr) == {"a_total": {"vm"}}


def test_the_board_is_a_grafana_dashboard_model():
    board = json.loads(BOARD.read_text())
    assert board["title"] and board["uid"] and board["schemaVersion"] >= 30
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) >= 6
    for panel in board["panels"]:
        assert panel["type"] in ("timeseries", "stat") and panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] == "${datasource}"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)) and all(t["expr"] for t in panel["targets"])


def test_every_series_it_reads_is_on_a_real_metrics_answer(client, db, make_vm):
    vm = make_vm(alive=True)  # a VM and its worker: liveness and health families
    db.add(Ioeventfd(vm_id=vm.id, space="pio", addr=0x6000, len=2, state="active", label="nic"))
    add_exit(db, vm.id, utcnow() - timedelta(seconds=1), 9, space="mmio", addr=0xD0000000)
    db.commit()
    response = client.get("/metrics")
    assert response.status_code == 200
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    board = json.loads(BOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        for name in names:
            assert name in labels, f"{name} (in {expr!r}) is not on /metrics"
        for name, matched in selector_labels(expr).items():
            assert matched <= labels[name], (name, matched - labels[name])
        used |= names
    exported = {n for n in labels if n.startswith("iosignal_") and not n.endswith("_created")}
    assert used == exported  # every family /metrics has gets a panel
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":  # label_values(metric, label)
            metric, label = re.findall(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])[0]
            assert label in labels[metric], variable["definition"]
