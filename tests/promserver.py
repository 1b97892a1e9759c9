"""`PrometheusServer`: Debian's real `prometheus` as a process scraping one target, with its own
temporary storage, asked through its HTTP API; `scrape`: a target's /metrics read directly
(used by the observer's Prometheus tests)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from support import free_port, need

CONFIG = """\
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
"""


Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(address: str) -> Scrape | None:
    """Every sample of the observer's /metrics by (name, labels); None while it is not up."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Scrape, name: str, **labels: str) -> float | None:
    """The one sample of `name` whose labels include `labels`."""
    found = [
        v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()
    ]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def prometheus_binary() -> str:
    """The prometheus command (fails in CI when it is missing, else skips)."""
    path = shutil.which("prometheus") or "/usr/bin/prometheus"
    need("prometheus", Path(path).exists(), "install Debian's prometheus (.ci/run does)")
    return path


class PrometheusServer:
    """A Prometheus scraping `target` (HOST:PORT) every `interval`; `stop()` kills it."""

    def __init__(self, target: str, tmp: Path, job: str = "iosignal", interval: str = "1s"):
        self.job, self.tmp = job, tmp
        config = tmp / "prometheus.yml"
        config.write_text(CONFIG.format(interval=interval, job=job, target=target))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = tmp / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus did not start: {self.log_path.read_text()}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1/`path`; its `data` (raises with Prometheus's error otherwise)."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """An instant query's result (vector or matrix entries), at Unix time `at` (or now)."""
        data = self.api("query", query=expr, time=None if at is None else f"{at:.3f}")
        return data["result"]

    def samples(self, expr: str) -> list[tuple[float, float]]:
        """The raw samples of a single-series range selector `expr` (e.g. `x{...}[5m]`)."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []

    def stop(self) -> None:
        """Kill it (its storage is the test's temporary folder)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
