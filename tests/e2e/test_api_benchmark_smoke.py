"""The API benchmark still runs end to end (low rates, short); figures checked for sense only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_api_benchmark_runs_and_reports_every_figure() -> None:
    cmd = [sys.executable, "-m", "benchmarks.api", "--seconds", "0.5"]
    cmd += ["--create-rate", "40", "--get-rate", "80", "-o", "json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=110, check=True)
    report = json.loads(out.stdout)
    for name, n in (("raw_put", 20), ("api_create", 20), ("raw_get", 40), ("api_get", 40)):
        figures = report[name]
        assert figures["n"] == n and figures["errors"] == 0, (name, figures)
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], (name, figures)
    assert report["api_get"]["server_cpu_ms_per_request"] > 0
