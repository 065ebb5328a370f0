"""Applications benchmark: scale one Application 0 -> N replicas through Zun, beside the same
engine driven directly, on Docker Swarm and on a `docker` Cluster, in one run.

    .venv/bin/python -m benchmarks.applications [--replicas 20] [--engine both] [-o json]

- swarm, direct: a service created with 0 replicas, then its raw spec posted back with N;
  done when N tasks run. Zun: an Application (0 replicas, settled) edited to N; done when its
  status says N ready.
- docker, direct: N containers created and started with the docker SDK, 4 threads; done when
  all run. Zun: a `docker` Cluster's Application (no service, so no balancer) edited to N;
  done when its status says N ready (Container records created, placed, started, reported).

Needs the Docker engine on /var/run/docker.sock as a Swarm manager (`docker swarm init
--advertise-addr 127.0.0.1`) and the test images (`hack/images.sh`). Starts its own etcd and
runs the controller in this process; removes everything it made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker

from zun_controller.drivers.runtime.docker import docker_runtime_factory
from zun_controller.engine.manager import Manager
from zun_controller.metrics import Metrics
from zun_controller.models.application import Application
from zun_controller.models.registry import parse
from zun_controller.reconcilers.app_setup import ApplicationControllers
from zun_controller.reconcilers.setup import RuntimeControllers
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

IMAGE = "zun-test/httpd:v1"
SOCKET = "unix:///var/run/docker.sock"
TIMEOUT_S = 300.0


@dataclass
class Figures:
    engine: str
    replicas: int
    direct_seconds: float = 0.0
    zun_seconds: float = 0.0
    #: direct time / Zun time: 1.0 means Zun is as fast as driving the engine by hand
    ratio: float = 0.0


@dataclass
class Report:
    replicas: int
    runs: list[Figures] = field(default_factory=list)


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def swarm_direct(api: Any, replicas: int, tag: str) -> float:
    spec = {
        "Name": f"bench-{tag}",
        "Labels": {"zun-bench": tag},
        "TaskTemplate": {"ContainerSpec": {"Image": IMAGE, "Init": True}},
        "Mode": {"Replicated": {"Replicas": 0}},
    }
    created = api._result(api._post_json(api._url("/services/create"), data=spec), json=True)
    sid = created["ID"]
    try:
        current = api.inspect_service(sid)
        body = current["Spec"]
        body["Mode"] = {"Replicated": {"Replicas": replicas}}
        start = time.perf_counter()
        api._post_json(
            api._url("/services/{0}/update", sid),
            data=body,
            params={"version": current["Version"]["Index"]},
        )

        def running() -> bool:
            tasks = api.tasks(filters={"service": sid, "desired-state": "running"})
            up: int = sum(t["Status"]["State"] == "running" for t in tasks)
            return up == replicas

        _wait(running, "swarm direct")
        return time.perf_counter() - start
    finally:
        api.remove_service(sid)


def docker_direct(engine: docker.DockerClient, replicas: int, tag: str) -> float:
    network = engine.networks.create(f"bench-{tag}", labels={"zun-bench": tag})

    def one(i: int) -> None:
        c = engine.containers.create(
            IMAGE,
            name=f"bench-{tag}-{i}",
            labels={"zun-bench": tag},
            init=True,
            network=network.name,
        )
        c.start()

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(replicas)))
        return time.perf_counter() - start
    finally:
        for c in engine.containers.list(
            ignore_removed=True, all=True, filters={"label": f"zun-bench={tag}"}
        ):
            c.remove(force=True)
        network.remove()


def _record(kind: str, name: str, spec: dict[str, Any], project: str | None = None) -> Any:
    meta: dict[str, Any] = {"name": name, **({"project": project} if project else {})}
    doc = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind, "metadata": meta}
    return parse({**doc, "spec": spec})


async def _until(store: RecordStore, project: str, check: Callable[[Application], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not check(await store.get(Application, "app", project)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{project}/app")
        await asyncio.sleep(0.05)


async def through_zun(store: RecordStore, cluster: str, replicas: int, project: str) -> float:
    spec = {
        "cluster": cluster,
        "replicas": 0,
        "template": {"containers": [{"name": "h", "image": IMAGE}]},
    }
    await store.create(_record("Application", "app", spec, project))
    await _until(store, project, lambda a: a.status.phase == "Ready")
    app = await store.get(Application, "app", project)
    app.spec.replicas = replicas
    start = time.perf_counter()
    await store.update(app)
    await _until(store, project, lambda a: a.status.ready_replicas == replicas)
    elapsed = time.perf_counter() - start
    await store.delete(Application, "app", project)
    deadline = time.monotonic() + TIMEOUT_S
    while (await store.list(Application, project)).items and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return elapsed


async def run(args: argparse.Namespace) -> Report:
    report, tag = Report(args.replicas), secrets.token_hex(3)
    engine = docker.DockerClient(base_url=SOCKET)
    engines = ["swarm", "docker"] if args.engine == "both" else [args.engine]
    with tempfile.TemporaryDirectory(prefix="zun-bench-") as tmp:
        server = EtcdServer(Path(tmp) / "etcd")
        server.start()
        kv = EtcdKV.from_url(server.url)
        store = RecordStore(kv)
        manager = Manager(metrics=Metrics(), health_port=None)
        runtime = RuntimeControllers(
            manager, store, manager.metrics, docker_runtime_factory, stop_grace=1
        )
        ApplicationControllers(manager, store, manager.metrics, runtime=runtime)
        # The engine is shared with other test sessions whose records live in other etcds:
        # this run must not take their containers for orphans.
        manager.tasks = [t for t in manager.tasks if t.name != "orphan-sweeper"]
        await store.create(_record("Host", "local", {"endpoint": SOCKET}))
        await store.create(_record("Cluster", "sw", {"type": "swarm", "endpoint": SOCKET}))
        await store.create(_record("Cluster", "dk", {"type": "docker"}))
        stop = asyncio.Event()
        task = asyncio.create_task(manager.run(stop))
        try:
            for name in engines:
                figures = Figures(name, args.replicas)
                progress(f"{name}: direct, 0 -> {args.replicas}")
                if name == "swarm":
                    figures.direct_seconds = swarm_direct(engine.api, args.replicas, tag)
                else:
                    figures.direct_seconds = docker_direct(engine, args.replicas, tag)
                progress(f"{name}: through Zun, 0 -> {args.replicas}")
                cluster = "sw" if name == "swarm" else "dk"
                figures.zun_seconds = await through_zun(
                    store, cluster, args.replicas, f"bench{name[0]}{tag}"
                )
                figures.ratio = figures.direct_seconds / figures.zun_seconds
                report.runs.append(figures)
        finally:
            stop.set()
            await task
            await kv.close()
            server.stop()
            for c in engine.containers.list(
                ignore_removed=True, all=True, filters={"label": f"zun-bench={tag}"}
            ):
                c.remove(force=True)
            for s in engine.services.list(filters={"label": f"zun-bench={tag}"}):
                s.remove()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--engine", choices=["swarm", "docker", "both"], default="both")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.output == "json":
        print(json.dumps(asdict(report), indent=2))
        return
    print(f"scale one Application 0 -> {report.replicas} replicas (seconds until all ready)")
    print("engine   direct     zun   direct/zun")
    for f in report.runs:
        print(f"{f.engine:<7} {f.direct_seconds:7.2f} {f.zun_seconds:7.2f}   {f.ratio:.2f}x")


if __name__ == "__main__":
    main()
