"""Containers benchmark: N Container records -> Running through Zun, beside the docker SDK
creating and starting the same N containers directly, at the same concurrency, in one run.

    .venv/bin/python -m benchmarks.containers [--count 100] [--workers 4] [-o json]

Needs a Docker engine on /var/run/docker.sock and the test images (`hack/dockerd.sh start`,
`hack/images.sh`). Starts its own etcd; runs the controller in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import docker

from zun_controller.drivers.runtime.docker import docker_runtime_factory
from zun_controller.engine.manager import Manager
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.reconcilers.setup import RuntimeControllers
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

IMAGE = "zun-test/httpd:v1"
SOCKET = "unix:///var/run/docker.sock"


@dataclass
class Report:
    count: int
    workers: int
    raw_seconds: float = 0.0
    zun_seconds: float = 0.0
    raw_per_s: float = 0.0
    zun_per_s: float = 0.0
    ratio: float = 0.0
    #: CPU this process (controller + etcd client) used while converging, against wall time
    zun_cpu_seconds: float = 0.0


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def raw(engine: docker.DockerClient, count: int, workers: int, tag: str) -> float:
    def one(i: int) -> None:
        c = engine.containers.create(
            IMAGE, name=f"raw-{tag}-{i}", labels={"zun-bench": tag}, init=True
        )
        c.start()

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - start
    for c in engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"zun-bench={tag}"}
    ):
        c.remove(force=True)
    return elapsed


async def through_zun(
    store: RecordStore, count: int, workers: int, project: str
) -> tuple[float, float]:
    manager = Manager(metrics=Metrics(), health_port=None)
    RuntimeControllers(
        manager, store, manager.metrics, docker_runtime_factory, workers=workers, stop_grace=1
    )
    host = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Host",
            "metadata": {"name": "local"},
            "spec": {"endpoint": SOCKET},
        }
    )
    await store.create(host)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    await asyncio.sleep(1.5)  # the Host becomes Ready before the clock starts
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        obj = parse(
            {
                "apiVersion": "zun.openstack.org/v1alpha1",
                "kind": "Container",
                "metadata": {"name": f"c{i}", "project": project},
                "spec": {"image": IMAGE},
            }
        )
        await store.create(obj)
    while True:
        items = (await store.list(Container, project)).items
        running = sum(o.status.phase == "Running" for o in items)
        if running == count:
            break
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    progress(f"zun: {count} Running in {elapsed:.1f}s; cleaning up")
    for i in range(count):
        await store.delete(Container, f"c{i}", project)
    while (await store.list(Container, project)).items:
        await asyncio.sleep(0.2)
    stop.set()
    await task
    return elapsed, cpu


async def run(args: argparse.Namespace) -> Report:
    report = Report(count=args.count, workers=args.workers)
    tag = secrets.token_hex(3)
    engine = docker.DockerClient(base_url=SOCKET)
    progress(f"raw docker SDK: {args.count} create+start, {args.workers} threads")
    report.raw_seconds = raw(engine, args.count, args.workers, tag)
    with tempfile.TemporaryDirectory(prefix="zun-bench-") as tmp:
        server = EtcdServer(Path(tmp) / "etcd")
        server.start()
        kv = EtcdKV.from_url(server.url)
        try:
            progress(f"zun: {args.count} Container records -> Running, {args.workers} workers")
            report.zun_seconds, report.zun_cpu_seconds = await through_zun(
                RecordStore(kv), args.count, args.workers, f"bench{tag}"
            )
        finally:
            await kv.close()
            server.stop()
            for c in engine.containers.list(
                ignore_removed=True,
                all=True,
                filters={"label": f"zun.openstack.org/project=bench{tag}"},
            ):
                c.remove(force=True)
            for n in engine.networks.list(
                filters={"label": f"zun.openstack.org/project=bench{tag}"}
            ):
                n.remove()
    report.raw_per_s = args.count / report.raw_seconds
    report.zun_per_s = args.count / report.zun_seconds
    report.ratio = report.zun_per_s / report.raw_per_s
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.output == "json":
        print(json.dumps(asdict(report), indent=2))
        return
    print(f"containers {report.count}, concurrency {report.workers}")
    print(f"raw docker SDK   {report.raw_seconds:6.1f} s  {report.raw_per_s:5.2f}/s")
    print(f"zun records      {report.zun_seconds:6.1f} s  {report.zun_per_s:5.2f}/s")
    print(f"ratio zun/raw    {report.ratio:.2f}x  (goal >= 0.8x)")
    print(f"controller CPU   {report.zun_cpu_seconds:6.1f} s while converging")


if __name__ == "__main__":
    main()
