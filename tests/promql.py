"""Reading PromQL the way the Grafana tests need: which metrics an expression reads, and by
which labels (tests/app/test_grafana.py, tests/observer/test_prometheus.py)."""

from __future__ import annotations

import re

# PromQL words that are not metric names (functions are told apart by their "(").
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    bare = re.sub(r'"[^"]*"', "", expr)  # label values
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    grouping = r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    bare = re.sub(grouping, "", bare)  # grouping labels
    return {
        m.group()
        for m in NAME.finditer(bare)
        if m.group() not in KEYWORDS and not bare[m.end() :].lstrip().startswith("(")
    }


def selector_labels(expr: str) -> dict[str, set[str]]:
    """For each `metric{...}` selector, the label names it matches on."""
    found: dict[str, set[str]] = {}
    for name, matchers in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
        found.setdefault(name, set()).update(re.findall(r"(\w+)\s*[=!~]", matchers))
    return found
