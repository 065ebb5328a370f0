"""A real Prometheus (Debian's `prometheus` package) on loopback, for e2e tests: scrape one
target every second, answer PromQL through its HTTP API, stop and leave nothing behind."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    def __init__(self, workdir: Path, target: str, rules: Path | None = None) -> None:
        self.workdir, self.port = workdir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rule_files = f"rule_files: ['{rules}']\n" if rules else ""
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            + rule_files
            + "scrape_configs:\n"
            + f"  - job_name: zun\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 30.0) -> None:
        log = (self.workdir / "prometheus.log").open("wb")
        cmd = [
            PROMETHEUS,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + within
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def targets_up(self) -> bool:
        return any(s["value"][1] == "1" for s in self.query('up{job="zun"}'))

    def rules_loaded(self) -> list[str]:
        answer = httpx.get(f"{self.url}/api/v1/rules", timeout=5).json()
        return [r["name"] for g in answer["data"]["groups"] for r in g["rules"]]

    def log_tail(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def has_number(result: list[dict[str, Any]]) -> bool:
    """Whether a query result holds at least one finite value."""
    return any(math.isfinite(float(s["value"][1])) for s in result)
