"""The chaos run: records converge and change while faults are injected, then the audit."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.chaos.api import ChaosApi
from benchmarks.chaos.audit import (
    Desired,
    DesiredApp,
    Findings,
    actions_taken,
    audit,
    overlapping_actions,
)
from benchmarks.chaos.kube import ChaosKube
from benchmarks.chaos.retry import retrying
from benchmarks.chaos.world import MAIN_ENGINE, World
from zun_controller.errors import (
    AlreadyExistsError,
    CompactedError,
    NotFoundError,
    TransientError,
)
from zun_controller.models.application import Application
from zun_controller.models.container import Container, DesiredState
from zun_controller.models.registry import parse
from zun_controller.store.records import RecordStore

IMAGES = ("zun-test/httpd:v1", "zun-test/httpd:v2")
CLUSTERS = ("chaos", "swarm")  # Applications alternate: docker Cluster, Swarm
#: how often each fault is drawn; a dockerd restart stops and starts every container, the slowest
FAULT_WEIGHTS = {
    "kill_controller": 4,
    "kill_api": 2,
    "kill_bridge": 2,
    "restart_etcd": 2,
    "compact": 2,
    "pause_etcd": 2,
    "restart_dockerd": 1,
}


@dataclass(frozen=True)
class Profile:
    records: int
    apps: int
    faults: int
    seconds: float
    converge_within: float = 300.0
    bridge: bool = True  # Containers through custom resources, the bridge SIGKILLed as a fault


PROFILES = {
    "short": Profile(records=20, apps=2, faults=8, seconds=60),
    # 35 minutes of faults, so the window passes 30 even when few dockerd restarts slow it
    "long": Profile(records=480, apps=20, faults=110, seconds=2100, converge_within=900),
}


@dataclass
class Report:
    profile: str
    records_created: int = 0
    apps_created: int = 0
    app_changes: int = 0
    changes: int = 0
    deletes: int = 0
    api_retries: int = 0
    containers_created_through: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    seconds_from_first_to_last_fault: float = 0.0
    seconds_to_converge_after_last_fault: float = 0.0
    reconciles: int = 0
    replica_processes: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    details: dict[str, list[str]] = field(default_factory=dict)
    passed: bool = False


def progress(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Workload:
    """What the harness has been told is acknowledged, kept as the expected end state.

    Container writes go through the REST API, straight to the store (as GitOps does) or, with
    a bridge, through custom resources (and those Containers are changed and deleted that way
    only); Applications alternate between the docker and the swarm Cluster."""

    def __init__(
        self,
        store: RecordStore,
        api: ChaosApi,
        kube: ChaosKube | None,
        project: str,
        rng: random.Random,
    ) -> None:
        self.store, self.api, self.kube, self.project, self.rng = store, api, kube, project, rng
        self.kube_names: set[str] = set()
        self.ways: Counter[str] = Counter()  # Containers created, by way in
        self.expected: dict[str, Desired] = {}
        self.apps: dict[str, DesiredApp] = {}
        self.serial = 0
        self.stats: Counter[str] = Counter()

    async def create(self) -> None:
        name = f"c{self.serial:04d}"
        self.serial += 1
        doc = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
               "metadata": {"name": name, "project": self.project},
               "spec": {"image": IMAGES[0], "restartPolicy": "Always"}}  # fmt: skip

        async def op() -> None:
            # AlreadyExists: an earlier try went through before its answer was lost
            with contextlib.suppress(AlreadyExistsError):
                await self.store.create(parse(doc))

        if self.kube is not None and self.rng.random() < 1 / 3:
            await self.kube.create(doc)
            self.kube_names.add(name)
            self.ways["kubernetes"] += 1
        elif self._via_api():
            await self.api.create(self.project, "containers", doc)
            self.ways["api"] += 1
        else:
            await retrying(op)
            self.ways["store"] += 1
        self.expected[name] = Desired(IMAGES[0], "Running")
        self.stats["created"] += 1

    async def change(self) -> None:
        name = self.rng.choice(sorted(self.expected))
        old = self.expected[name]
        new = (
            Desired(IMAGES[1 - IMAGES.index(old.image)], old.state)
            if self.rng.random() < 0.5
            else Desired(old.image, "Stopped" if old.state == "Running" else "Running")
        )

        async def op() -> None:
            obj = await self.store.get(Container, name, self.project)
            obj.spec.image = new.image
            obj.spec.state = DesiredState(new.state)
            await self.store.update(obj)

        patch = {"spec": {"image": new.image, "state": new.state}}
        if self.kube is not None and name in self.kube_names:
            await self.kube.patch(name, patch)
        elif self._via_api():
            await self.api.patch(self.project, "containers", name, patch)
        else:
            await retrying(op)
        self.expected[name] = new
        self.stats["changed"] += 1

    async def delete(self) -> None:
        name = self.rng.choice(sorted(self.expected))

        async def op() -> None:
            with contextlib.suppress(NotFoundError):
                await self.store.delete(Container, name, self.project)

        if self.kube is not None and name in self.kube_names:
            await self.kube.delete(name)
            self.kube_names.discard(name)
        elif self._via_api():
            await self.api.delete(self.project, "containers", name)
        else:
            await retrying(op)
        del self.expected[name]
        self.stats["deleted"] += 1

    def _via_api(self) -> bool:
        return self.rng.random() < 0.5

    async def create_app(self) -> None:
        name = f"app{len(self.apps):03d}"
        cluster = CLUSTERS[len(self.apps) % len(CLUSTERS)]
        template = {"containers": [{"name": "web", "image": IMAGES[0]}]}
        # swarm: no published port, since host-mode ports of several services would collide
        if cluster == "swarm":
            service = {"type": "Internal", "ports": [{"port": 80, "targetPort": 8080}]}
        else:  # a fixed host port: engines hand out ephemeral ones from the same start
            node_port = 40000 + zlib.crc32(self.project.encode()) % 200 * 100 + len(self.apps)
            service = {"ports": [{"port": 80, "targetPort": 8080, "nodePort": node_port}]}
        doc = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Application",
               "metadata": {"name": name, "project": self.project},
               "spec": {"cluster": cluster, "replicas": 2, "template": template,
                        "service": service,
                        "updateStrategy": {"progressDeadlineSeconds": 300}}}  # fmt: skip

        async def op() -> None:
            with contextlib.suppress(AlreadyExistsError):
                await self.store.create(parse(doc))

        await retrying(op)
        self.apps[name] = DesiredApp(IMAGES[0], 2, cluster)
        self.stats["apps"] += 1

    async def change_app(self) -> None:
        name = self.rng.choice(sorted(self.apps))
        old = self.apps[name]
        if self.rng.random() < 0.5:
            new = DesiredApp(old.image, self.rng.randint(1, 3), old.cluster)
        else:
            new = DesiredApp(IMAGES[1 - IMAGES.index(old.image)], old.replicas, old.cluster)

        async def op() -> None:
            app = await self.store.get(Application, name, self.project)
            app.spec.replicas = new.replicas
            app.spec.template.containers[0].image = new.image
            await self.store.update(app)

        await retrying(op)
        self.apps[name] = new
        self.stats["app_changes"] += 1

    async def step(self) -> None:
        roll = self.rng.random()
        if self.apps and roll < 0.1:
            await self.change_app()
        elif roll < 0.4 or len(self.expected) < 4:
            await self.create()
        elif roll < 0.85:
            await self.change()
        else:
            await self.delete()


class Faults:
    def __init__(self, world: World, rng: random.Random) -> None:
        self.world, self.rng = world, rng
        self.counts: Counter[str] = Counter()
        self.weights = {
            k: w for k, w in FAULT_WEIGHTS.items() if world.bridge or k != "kill_bridge"
        }
        # every kind once first (in a random order), so that a short run covers them all
        self._first = self.rng.sample(list(self.weights), len(self.weights))

    async def inject(self) -> str:
        kinds, weights = list(self.weights), list(self.weights.values())
        fault = self._first.pop() if self._first else self.rng.choices(kinds, weights)[0]
        progress(f"fault: {fault}")
        await getattr(self, fault)()
        self.counts[fault] += 1
        return fault

    async def kill_controller(self) -> None:
        name = self.rng.choice(sorted(self.world.replicas))
        self.world.kill_replica(name)
        await asyncio.sleep(self.rng.uniform(0.5, 3))
        self.world.start_replica(name)

    async def kill_api(self) -> None:
        self.world.kill_api()
        await asyncio.sleep(self.rng.uniform(0.5, 3))
        self.world.start_api()

    async def kill_bridge(self) -> None:
        self.world.kill_bridge()
        await asyncio.sleep(self.rng.uniform(0.5, 3))
        self.world.start_bridge()

    async def restart_etcd(self) -> None:
        await asyncio.to_thread(self.world.etcd.restart)

    async def compact(self) -> None:
        store = self.world.store()
        try:
            await retrying(lambda: _compact(store), 30)
        finally:
            await store.kv.close()

    async def restart_dockerd(self) -> None:
        await asyncio.to_thread(self.world.restart_engine)

    async def pause_etcd(self) -> None:
        self.world.etcd.signal(signal.SIGSTOP)
        await asyncio.sleep(6.0)  # longer than the replicas' 4 s lease
        self.world.etcd.signal(signal.SIGCONT)


async def _compact(store: RecordStore) -> None:
    # compacted already: an earlier try went through before its answer was lost, or nothing
    # was written since the last compaction (the third long run stopped on this at fault 101)
    with contextlib.suppress(CompactedError):
        await store.kv.compact(await store.kv.revision())


async def register_engine(store: RecordStore, url: str) -> None:
    host = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Host",
            "metadata": {"name": "chaos"}, "spec": {"endpoint": url}}  # fmt: skip
    cluster = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Cluster",
               "metadata": {"name": "chaos"}, "spec": {"type": "docker"}}  # fmt: skip
    swarm = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Cluster",
             "metadata": {"name": "swarm"},
             "spec": {"type": "swarm", "endpoint": MAIN_ENGINE}}  # fmt: skip
    for doc in (host, cluster, swarm):
        with contextlib.suppress(AlreadyExistsError):
            await store.create(parse(doc))


async def drive(world: World, profile: Profile, name: str, seed: int) -> Report:
    rng = random.Random(seed)
    report = Report(profile=name)
    store = world.store()
    api = ChaosApi(world.api_url, world.token)
    kube = ChaosKube(world.kube.kubeconfig, world.project) if world.bridge else None
    work, faults = Workload(store, api, kube, world.project, rng), Faults(world, rng)
    try:
        await retrying(lambda: register_engine(store, world.engine_url))
        for _ in range(profile.records):
            await work.create()
        for _ in range(profile.apps):
            await work.create_app()
        progress(f"{profile.records} records; {profile.faults} faults in {profile.seconds:.0f}s")
        # spaced to end on time: slow faults (a dockerd restart with hundreds of containers
        # takes minutes) bring the next ones closer
        end = time.monotonic() + profile.seconds
        first_fault = 0.0
        for done in range(profile.faults):
            gap = max(0.0, end - time.monotonic()) / (profile.faults - done)
            deadline = time.monotonic() + rng.uniform(0.5 * gap, 1.5 * gap)
            while time.monotonic() < deadline:
                await work.step()
                world.supervise()
                await asyncio.sleep(rng.uniform(0.05, 0.5))
            first_fault = first_fault or time.monotonic()
            await faults.inject()
        last_fault = time.monotonic()
        report.seconds_from_first_to_last_fault = last_fault - first_fault
        findings = await converge(world, store, work, profile.converge_within)
        report.seconds_to_converge_after_last_fault = time.monotonic() - last_fault
    finally:
        await api.close()
        if kube is not None:
            kube.close()
        await store.kv.close()
    report.api_retries = api.retries
    report.containers_created_through = dict(work.ways)
    report.records_created = work.stats["created"]
    report.apps_created = work.stats["apps"]
    report.app_changes = work.stats["app_changes"]
    report.changes = work.stats["changed"]
    report.deletes = work.stats["deleted"]
    report.faults = dict(faults.counts)
    report.reconciles, report.replica_processes = actions_taken(world.action_log)
    report.findings = findings.counts()
    report.details = {k: v[:20] for k, v in vars(findings).items() if v}
    report.passed = findings.clean()
    return report


async def converge(world: World, store: RecordStore, work: Workload, within: float) -> Findings:
    """Audit until clean (and twice in a row) or until `within` seconds pass."""
    deadline = time.monotonic() + within
    engine, main = world.docker(), world.main_docker()
    clean_once = False
    while True:
        try:
            findings = await audit(
                store,
                engine=engine,
                swarm=main,
                project=world.project,
                expected=work.expected,
                apps=work.apps,
            )
            if work.kube is not None:
                crs = await asyncio.to_thread(work.kube.list)
                await check_custom_resources(store, world.project, crs, work, findings)
        except (TransientError, Exception) as exc:  # the engine or etcd may still be coming back
            progress(f"audit not possible yet: {exc!r}")
            await asyncio.sleep(3)
            continue
        findings.overlapping_actions = overlapping_actions(world.action_log)
        world.supervise()
        if findings.clean() and clean_once:
            return findings
        clean_once = findings.clean()
        if time.monotonic() > deadline:
            return findings
        progress(f"converging: {findings.counts()}")
        await asyncio.sleep(3)


async def check_custom_resources(
    store: RecordStore,
    project: str,
    crs: dict[str, dict[str, Any]],
    work: Workload,
    found: Findings,
) -> None:
    """Containers made through Kubernetes: a custom resource for each acknowledged one and no
    other, its status (brought up by the bridge) the record's phase and the desired state."""
    records = {r.name: r for r in (await store.list(Container, project)).items}
    for name in sorted(work.kube_names):
        cr, record = crs.get(name), records.get(name)
        if cr is None:
            found.lost.append(f"cr/{name}")
        elif record is not None:
            phase = (cr.get("status") or {}).get("phase")
            if phase != record.status.phase or phase != work.expected[name].state:
                found.unconverged.append(f"cr/{name}")
    found.unexpected += sorted(f"cr/{n}" for n in set(crs) - work.kube_names)


def run(profile_name: str, workdir: Any, seed: int, engine: str = "chaos") -> Report:
    world = World(workdir, engine, bridge=PROFILES[profile_name].bridge)
    world.start()
    try:
        return asyncio.run(drive(world, PROFILES[profile_name], profile_name, seed))
    finally:
        world.stop()
