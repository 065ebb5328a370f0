"""The engine benchmark still runs end to end (small N); its figures are checked for sense only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_engine_benchmark_runs_and_reports_every_figure() -> None:
    cmd = [sys.executable, "-m", "benchmarks.controller", "--records", "300"]
    cmd += ["--latency-seconds", "1", "--idle-seconds", "1", "-o", "json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=170, check=True)
    report = json.loads(out.stdout)
    assert report["records"] == 300
    for figure in ("raw_kv_per_s", "raw_store_per_s", "controller_per_s", "ratio_to_raw_kv"):
        assert report[figure] > 0, figure
    assert report["latency_samples"] >= 50
    assert 0 < report["latency_p50_ms"] <= report["latency_p99_ms"]
    assert 0 < report["cache_bytes_per_record"] < 100_000
    assert "[bench] controller" in out.stderr


@pytest.mark.timeout(120)
def test_encryption_benchmark_runs_and_reports_every_figure() -> None:
    cmd = [sys.executable, "-m", "benchmarks.encryption", "--count", "50", "--values", "100"]
    cmd += ["--rounds", "1", "--etcd-rounds", "1", "-o", "json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=110, check=True)
    report = json.loads(out.stdout)
    assert report["count"] == 50 and report["value_bytes"] > 5000
    for figure in ("encode_ratio", "decode_ratio", "seal_us", "open_us", "create_ratio"):
        assert report[figure] > 0, figure
    assert "[bench] etcd" in out.stderr
