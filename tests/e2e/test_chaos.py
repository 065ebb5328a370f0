"""The chaos suite's short profile: Containers (written through the REST API, straight to the
store, and as custom resources through the kopf bridge) and Applications (on a docker Cluster
and on Swarm) converge and change under SIGKILLed replicas, API and bridge, etcd restarts,
pauses and compactions, and dockerd restarts; then nothing is lost, doubled, orphaned or
misreported, and no two replicas acted at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_short_chaos_profile_audits_clean(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "benchmarks.chaos", "--profile", "short", "-o", "json"]
    cmd += ["--workdir", str(tmp_path), "--engine", "chaosci"]  # not a hand run's engine
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=880, check=False)
    report = json.loads(done.stdout)
    assert sum(report["faults"].values()) == 8, report
    assert set(report["faults"]) == {
        "kill_controller", "kill_api", "kill_bridge", "restart_etcd", "compact", "pause_etcd",
        "restart_dockerd",
    }, report  # fmt: skip
    assert report["records_created"] >= 20 and report["apps_created"] == 2
    ways = report["containers_created_through"]
    assert set(ways) == {"store", "api", "kubernetes"} and min(ways.values()) > 0, ways
    assert report["findings"] == {
        "lost": 0,
        "unexpected": 0,
        "unconverged": 0,
        "untruthful": 0,
        "duplicates": 0,
        "orphans": 0,
        "dangling_owners": 0,
        "overlapping_actions": 0,
    }, report["details"]
    # more than one replica process acted (the rival, restarts), never at once (checked above)
    assert report["reconciles"] > 0 and report["replica_processes"] >= 2, report
    assert report["seconds_from_first_to_last_fault"] > 0, report
    assert report["passed"] and done.returncode == 0
