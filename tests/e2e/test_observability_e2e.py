"""Observability end to end: a real Prometheus scrapes `zun-controller run` while it converges
Container records on the real Docker engine, and every query of the Grafana dashboard returns
data; the alert rules load in Prometheus and pass `promtool check rules` and `promtool test
rules`; Events of what the controller did are in etcd; log lines are JSON with the reconcile's
kind, project, name and id."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import pytest
import yaml
from prom_bed import PROMTOOL, PrometheusServer, free_port, has_number
from testbed.docker import HTTPD_V1, MAIN_SOCKET_URL, client, ensure_dockerd, ensure_test_images
from zun_bed import ZUN, ZunBed, clean_engine

from zun_controller.models.event import Event
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = sorted((REPO / "deploy" / "prometheus" / "tests").glob("*.yml"))
DASHBOARD = REPO / "deploy" / "grafana" / "zun-controller.json"
ALERTS = {
    "ZunReconcileErrorsHigh",
    "ZunWorkqueueBacklog",
    "ZunNoLeader",
    "ZunDriverErrors",
    "ZunConvergenceSlow",
    "ZunRecordsInError",
}


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


class Controller(ZunBed):
    """`zun-controller run` on a known metrics port, logging JSON."""

    metrics_port = 0

    def start(self) -> None:
        self.starts += 1
        self.metrics_port = free_port()
        log = (self.workdir / f"controller-{self.starts}.log").open("wb")
        cmd = [ZUN, "run", "--etcd", self.etcd.url, "--lease-ttl", "3", "--log-json"]
        cmd += ["--health-port", str(self.metrics_port), "--metrics-tenant-names"]
        env = {**os.environ, "ZUN_LOG_LEVEL": "INFO"}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
def project() -> str:
    return f"o{secrets.token_hex(3)}"


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, engine: docker.DockerClient, project: str
) -> AsyncIterator[Controller]:
    bed = Controller(own_etcd, tmp_path, (project,))
    await bed.host("local", MAIN_SOCKET_URL)
    bed.start()
    yield bed
    await bed.close()
    clean_engine(engine, (project,))


@pytest.fixture
def prometheus(zun: Controller, tmp_path: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path, f"127.0.0.1:{zun.metrics_port}", rules=RULES)
    server.start()
    yield server
    server.stop()


@pytest.mark.timeout(240)
async def test_prometheus_scrapes_and_every_dashboard_query_returns_data(
    zun: Controller, prometheus: PrometheusServer, engine: docker.DockerClient, project: str
) -> None:
    await zun.until(prometheus.targets_up, 60, "prometheus scrapes the controller")
    for name in ("web", "api"):
        await zun.apply("Container", name, {"image": HTTPD_V1}, project=project)
    # a memory limit under the engine's minimum: a create that fails (a missing image would be
    # pulled, and an OCI runtime no Host has leaves the container Pending)
    ghost = {"image": HTTPD_V1, "resources": {"memory": "4Mi"}}
    await zun.apply("Container", "ghost", ghost, project=project)
    web = await zun.phase("web", project, "Running")
    await zun.phase("api", project, "Running")
    engine.containers.get(web.status.container_id or "").stop(timeout=0)  # drift
    await zun.until(
        lambda: has_number(prometheus.query('zun_drift_corrections_total{action="restarted"} > 0')),
        90,
        "the drift correction is scraped",
    )
    missing = set(dashboard_queries())
    deadline = time.monotonic() + 90
    while missing and time.monotonic() < deadline:
        missing = {q for q in missing if not prometheus.query(q)}
        await asyncio.sleep(1)
    assert not missing, f"dashboard queries without data: {sorted(missing)}"
    for expr in (
        'zun_records{kind="Container",phase="Error"}',
        'zun_container_memory_bytes{name="web"}',
        "histogram_quantile(0.99, sum by (le) ("
        'rate(zun_convergence_seconds_bucket{kind="Container"}[15m])))',
        'zun_driver_calls_total{operation="create",result="error"}',
    ):
        assert has_number(prometheus.query(f"({expr}) > 0")), expr
    assert set(prometheus.rules_loaded()) == ALERTS


async def test_events_and_json_logs_say_what_the_controller_did(
    zun: Controller, project: str
) -> None:
    await zun.apply("Container", "web", {"image": HTTPD_V1}, project=project)
    # a memory limit under the engine's minimum: a failing reconcile (a missing image would
    # be pulled, and an OCI runtime no Host has leaves the container Pending)
    ghost = {"image": HTTPD_V1, "resources": {"memory": "4Mi"}}
    await zun.apply("Container", "ghost", ghost, project=project)
    await zun.phase("web", project, "Running")
    await zun.phase("ghost", project, "Error")

    wanted = {("web", "Scheduled"), ("web", "Created"), ("web", "Started")}
    wanted |= {("ghost", "InvalidConfig")}

    async def recorded() -> bool:
        events = (await zun.store.list(Event, project=project)).items
        return wanted <= {(e.spec.involved_object.name, e.spec.reason) for e in events}

    await zun.until(recorded, 30, "events in etcd")
    lines = [json.loads(line) for line in zun.log_tail().splitlines() if line.startswith("{")]
    failed = [x for x in lines if x.get("msg") == "reconcile failed; retrying"]
    # ghost's lines: another Container's reconcile may fail once and be logged before them
    failed = [x for x in failed if x.get("name") == "ghost"]
    assert failed, zun.log_tail()
    assert failed[0]["kind"] == "Container" and failed[0]["name"] == "ghost"
    assert failed[0]["project"] == project and len(failed[0]["reconcile_id"]) == 12


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    check = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in check.stdout
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", *map(str, RULE_TESTS)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    names = [t["name"] for f in RULE_TESTS for t in yaml.safe_load(f.read_text())["tests"]]
    assert sorted(names) == sorted(ALERTS), "one promtool test group per alert"
