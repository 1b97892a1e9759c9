"""Reading deploy/: systemd units as {section: {key: [values]}} (a key may repeat) and the
observer's capabilities as each file names them."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SYSTEMD, K8S = DEPLOY / "systemd", DEPLOY / "k8s"
INSTALLED = "/opt/iosignal/bin/iosignal"  # where the units expect the command (docs/deployment.md)

Unit = dict[str, dict[str, list[str]]]


def unit(name: str) -> Unit:
    """A unit file's sections; comments and blank lines left out."""
    out: Unit = {}
    section: dict[str, list[str]] = {}
    for raw in (SYSTEMD / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def bounding_set(u: Unit) -> set[str]:
    """The capabilities a unit's processes may ever hold (CapabilityBoundingSet=, words)."""
    return {w for v in u["Service"]["CapabilityBoundingSet"] for w in v.split()}


def daemonset() -> dict:
    """deploy/k8s/observer-daemonset.yaml."""
    return yaml.safe_load((K8S / "observer-daemonset.yaml").read_text())


OBSERVER_UNIT = "iosignal-observe.service"
