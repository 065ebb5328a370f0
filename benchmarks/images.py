"""Images benchmark: N Containers of one not-yet-pulled image on one Host, pulled from a loopback
registry, to all Running through Zun; beside `docker pull` of a second not-yet-pulled copy plus
N raw creates and starts at the same concurrency, in one run; and the pulls each made.

    .venv/bin/python -m benchmarks.images [--count 20] [--workers 4] [-o json]

Needs a Docker engine on /var/run/docker.sock, the test images (`hack/dockerd.sh start`,
`hack/images.sh`) and Debian's docker-registry (`hack/setup.sh`). Starts its own registry
(`hack/registry.sh`) and etcd; runs the controller in this process. Each side pulls its own
repository copy of `zun-test/httpd:v1`, removed locally before the clock starts (the layers
stay, as the zun-test tag keeps them: what is timed is the registry round trips and the
engine's pull, not a download).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from zun_controller.errors import AlreadyExistsError
from zun_controller.metrics import Metrics
from zun_controller.models.base import Resource
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.reconcilers.setup import RuntimeControllers
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from testbed.registry import start_registry, stop_registry

SOURCE = "zun-test/httpd:v1"
SOCKET = "unix:///var/run/docker.sock"


@dataclass
class Report:
    count: int
    workers: int
    raw_seconds: float = 0.0
    zun_seconds: float = 0.0
    #: zun_seconds / raw_seconds (goal <= 1.15)
    ratio: float = 0.0
    raw_pulls: int = 0
    zun_pulls: int = 0
    #: the same N Containers again, the image now present (no pull): the controller's own part
    zun_present_seconds: float = 0.0


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def raw(engine: docker.DockerClient, image: str, count: int, workers: int) -> float:
    """`docker pull` then `count` creates and starts, `workers` at a time; seconds."""
    tag = secrets.token_hex(3)
    repository, _, version = image.rpartition(":")

    def one(i: int) -> None:
        c = engine.containers.create(image, name=f"rawpull-{tag}-{i}", labels={"zun-bench": tag})
        c.start()

    start = time.perf_counter()
    engine.images.pull(repository, tag=version)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - start
    for c in engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"zun-bench={tag}"}
    ):
        c.remove(force=True)
    return elapsed


def _record(kind: str, name: str, spec: dict[str, object], project: str | None = None) -> Resource:
    meta = {"name": name, **({"project": project} if project else {})}
    return parse({"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind, "metadata": meta,
                  "spec": spec})  # fmt: skip


async def through_zun(
    store: RecordStore, image: str, count: int, workers: int, project: str
) -> float:
    manager = Manager(metrics=Metrics(), health_port=None)
    RuntimeControllers(
        manager, store, manager.metrics, docker_runtime_factory, workers=workers, stop_grace=1
    )
    with contextlib.suppress(AlreadyExistsError):  # made by the previous round
        await store.create(_record("Host", "local", {"endpoint": SOCKET}))
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    await asyncio.sleep(1.5)  # the Host becomes Ready before the clock starts
    start = time.perf_counter()
    for i in range(count):
        await store.create(_record("Container", f"c{i}", {"image": image}, project))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        items = (await store.list(Container, project)).items
        if sum(o.status.phase == "Running" for o in items) == count:
            break
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - start
    progress(f"zun: {count} Running in {elapsed:.1f}s; cleaning up")
    for i in range(count):
        await store.delete(Container, f"c{i}", project)
    cleanup = time.monotonic() + 120
    while (await store.list(Container, project)).items and time.monotonic() < cleanup:
        await asyncio.sleep(0.2)
    stop.set()
    await task
    return elapsed


async def run(args: argparse.Namespace) -> Report:
    report = Report(count=args.count, workers=args.workers)
    tag = secrets.token_hex(3)
    engine = docker.DockerClient(base_url=SOCKET, version="auto")
    api = engine.api
    registry = start_registry(f"bench-{tag}")
    project = f"bench{tag}"
    try:
        raw_image = registry.ref(f"zun-bench-{tag}/raw", "v1")
        zun_image = registry.ref(f"zun-bench-{tag}/zun", "v1")
        for image in (raw_image, zun_image):
            registry.push(api, SOURCE, image.split("/", 1)[1].rsplit(":", 1)[0], "v1")
        progress(f"raw: docker pull + {args.count} create+start, {args.workers} threads")
        report.raw_seconds = raw(engine, raw_image, args.count, args.workers)
        report.raw_pulls = registry.pulls(f"zun-bench-{tag}/raw", "v1")
        with tempfile.TemporaryDirectory(prefix="zun-bench-") as tmp:
            server = EtcdServer(Path(tmp) / "etcd")
            server.start()
            kv = EtcdKV.from_url(server.url)
            try:
                progress(f"zun: {args.count} Containers of an absent image, {args.workers} workers")
                report.zun_seconds = await through_zun(
                    RecordStore(kv), zun_image, args.count, args.workers, project
                )
                report.zun_pulls = registry.pulls(f"zun-bench-{tag}/zun", "v1")
                progress(f"zun: {args.count} Containers again, the image present")
                report.zun_present_seconds = await through_zun(
                    RecordStore(kv), zun_image, args.count, args.workers, f"{project}b"
                )
            finally:
                await kv.close()
                server.stop()
    finally:
        for name in (project, f"{project}b"):
            label = f"zun.openstack.org/project={name}"
            for c in engine.containers.list(
                ignore_removed=True, all=True, filters={"label": label}
            ):
                c.remove(force=True)
            for n in engine.networks.list(filters={"label": label}):
                n.remove()
        stop_registry(registry, api)
        engine.close()
    report.ratio = report.zun_seconds / report.raw_seconds
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.output == "json":
        print(json.dumps(asdict(report), indent=2))
        return
    print(f"containers {report.count} of one absent image, concurrency {report.workers}")
    print(f"docker pull + raw creates  {report.raw_seconds:6.2f} s  pulls {report.raw_pulls}")
    print(f"zun records                {report.zun_seconds:6.2f} s  pulls {report.zun_pulls}")
    print(f"zun, image present         {report.zun_present_seconds:6.2f} s  (no pull)")
    print(f"ratio zun/raw              {report.ratio:.2f}x  (goal <= 1.15x; pulls goal 1)")


if __name__ == "__main__":
    main()
