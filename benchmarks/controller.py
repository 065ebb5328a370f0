"""Engine benchmark on real etcd: converge N records, beside the raw client, same concurrency.

    .venv/bin/python -m benchmarks.controller [--records 10000] [--concurrency 64] [-o json]

Prints, measured in one run on one etcd started here:
- raw: the same client (EtcdKV) writing the same status values as compare-and-swap
  transactions, `concurrency` in flight, and through RecordStore.update_status (read + CAS);
- controller: informer list + watch, workqueue, `concurrency` workers and a trivial reconciler
  that writes status; records/s from start to every record converged, and its ratio to raw;
- write -> reconcile-start latency (p50/p99) for spec changes written at a fixed rate;
- informer cache bytes per record; the controller process's CPU while idle and converged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from zun_controller.engine.controller import Controller
from zun_controller.engine.informer import Informer
from zun_controller.engine.manager import Manager
from zun_controller.engine.reconciler import Result
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.store.codec import encode
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.keys import record_key
from zun_controller.store.kv import Txn
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer


@dataclass
class Report:
    records: int
    concurrency: int
    raw_kv_per_s: float = 0.0
    raw_store_per_s: float = 0.0
    controller_per_s: float = 0.0
    ratio_to_raw_kv: float = 0.0
    ratio_to_raw_store: float = 0.0
    latency_rate_per_s: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_samples: int = 0
    cache_bytes_per_record: float = 0.0
    idle_cpu_percent: float = 0.0
    notes: list[str] = field(default_factory=list)


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def record(i: int) -> Container:
    obj = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Container",
            "metadata": {"name": f"bench-{i:05d}", "project": "bench", "labels": {"app": "bench"}},
            "spec": {
                "image": "busybox",
                "command": ["httpd", "-f"],
                "ports": [{"containerPort": 8080}],
            },
        }
    )
    assert isinstance(obj, Container)
    return obj


def stamp(obj: Container) -> None:
    obj.status.observed_generation = obj.metadata.generation
    obj.status.phase = "Running"


async def bounded(concurrency: int, jobs: list, fn) -> None:  # type: ignore[no-untyped-def,type-arg]
    it = iter(jobs)

    async def lane() -> None:
        for job in it:
            await fn(job)

    await asyncio.gather(*(lane() for _ in range(concurrency)))


async def create_all(store: RecordStore, n: int, concurrency: int) -> list[Container]:
    created: list[Container] = []

    async def create(i: int) -> None:
        created.append(await store.create(record(i)))

    await bounded(concurrency, list(range(n)), create)
    return created


async def measure_raw(store: RecordStore, n: int, concurrency: int, report: Report) -> None:
    kv = store.kv
    objs = await create_all(store, n, concurrency)
    progress(f"raw: {n} CAS status writes, {concurrency} in flight")

    async def cas(obj: Container) -> None:
        stamp(obj)
        key = record_key(obj.KIND, obj.name, obj.project)
        rev = int(obj.metadata.resource_version or 0)
        result = await kv.commit(Txn(compares=[(key, rev)], puts=[(key, encode(obj))]))
        assert result.succeeded

    start = time.perf_counter()
    await bounded(concurrency, objs, cas)
    report.raw_kv_per_s = n / (time.perf_counter() - start)
    await kv.delete_prefix("/zun/registry/")

    objs = await create_all(store, n, concurrency)
    progress(f"raw: {n} RecordStore.update_status, {concurrency} in flight")

    async def through_store(obj: Container) -> None:
        stamp(obj)
        await store.update_status(obj)

    start = time.perf_counter()
    await bounded(concurrency, objs, through_store)
    report.raw_store_per_s = n / (time.perf_counter() - start)
    await kv.delete_prefix("/zun/registry/")


class Trivial:
    """Writes status once per generation; notes when each (key, generation) started."""

    def __init__(self, informer: Informer[Container], store: RecordStore, target: int) -> None:
        self.informer, self.store, self.target = informer, store, target
        self.converged = 0
        self.all_converged = asyncio.Event()
        self.started: dict[tuple[str, int], float] = {}

    async def reconcile(self, key: str) -> Result:
        now = time.perf_counter()
        obj = self.informer.get(key)
        if obj is None or obj.status.observed_generation == obj.metadata.generation:
            return Result()
        self.started.setdefault((key, obj.metadata.generation), now)
        stamp(obj)
        await self.store.update_status(obj, stored=self.informer.stored(obj))
        if obj.metadata.generation == 1:
            self.converged += 1
            if self.converged == self.target:
                self.all_converged.set()
        return Result()


async def measure_controller(store: RecordStore, args: argparse.Namespace, report: Report) -> None:
    n = args.records
    await create_all(store, n, args.concurrency)
    metrics = Metrics()
    informer = Informer(store, Container, metrics=metrics)
    trivial = Trivial(informer, store, n)
    manager = Manager(metrics=metrics, health_port=None)
    manager.add_controller(
        Controller(
            "bench", trivial, informer, store=store, metrics=metrics, workers=args.concurrency
        )
    )
    stop = asyncio.Event()
    progress(f"controller: converging {n} records with {args.concurrency} workers")
    start = time.perf_counter()
    running = asyncio.create_task(manager.run(stop))
    await trivial.all_converged.wait()
    report.controller_per_s = n / (time.perf_counter() - start)
    report.ratio_to_raw_kv = report.controller_per_s / report.raw_kv_per_s
    report.ratio_to_raw_store = report.controller_per_s / report.raw_store_per_s
    await asyncio.sleep(0.5)
    report.cache_bytes_per_record = cache_bytes(informer) / max(1, len(informer))
    await measure_latency(store, trivial, args, report)
    await measure_idle(args.idle_seconds, report)
    stop.set()
    await running


def cache_bytes(informer: Informer[Container]) -> int:
    cache = informer._cache  # the benchmark measures the private cache itself
    total = sys.getsizeof(cache)
    for key, cached in cache.items():
        total += sys.getsizeof(key) + sys.getsizeof(cached) + sys.getsizeof(cached.value)
    return total


async def measure_latency(
    store: RecordStore, trivial: Trivial, args: argparse.Namespace, report: Report
) -> None:
    rate, seconds = args.latency_rate, args.latency_seconds
    count = int(rate * seconds)
    progress(f"latency: {count} spec changes at {rate}/s")
    names = [f"bench-{i:05d}" for i in range(min(count, args.records))]
    written: dict[tuple[str, int], float] = {}
    start = time.perf_counter()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        name = names[i % len(names)]
        obj = trivial.informer.get_by_name(name, "bench")
        assert obj is not None
        obj.spec.image = f"busybox:{i}"
        t0 = time.perf_counter()
        try:
            new = await store.update(obj)
        except Exception:  # a conflict with our own status write: skip the sample
            continue
        written[(f"containers/bench/{name}", new.metadata.generation)] = t0
    async with asyncio.timeout(30):
        while not all(k in trivial.started for k in written):
            await asyncio.sleep(0.05)
    lat = sorted((trivial.started[k] - t0) * 1000 for k, t0 in written.items())
    report.latency_rate_per_s = rate
    report.latency_samples = len(lat)
    report.latency_p50_ms = statistics.median(lat)
    report.latency_p99_ms = lat[min(len(lat) - 1, int(len(lat) * 0.99))]


async def measure_idle(seconds: float, report: Report) -> None:
    progress(f"idle: {seconds}s with everything converged")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    report.idle_cpu_percent = 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)


async def run(args: argparse.Namespace) -> Report:
    report = Report(records=args.records, concurrency=args.concurrency)
    with tempfile.TemporaryDirectory(prefix="zun-bench-") as tmp:
        server = EtcdServer(Path(tmp) / "etcd")
        server.start()
        kv = EtcdKV.from_url(server.url, timeout=30)
        store = RecordStore(kv)
        try:
            await measure_raw(store, args.records, args.concurrency, report)
            await measure_controller(store, args, report)
        finally:
            await kv.close()
            server.stop()
    return report


def table(report: Report) -> str:
    rows = [
        ("records", f"{report.records}", ""),
        ("concurrency", f"{report.concurrency}", "in flight / workers"),
        ("raw CAS writes", f"{report.raw_kv_per_s:,.0f}/s", "EtcdKV txn, same values"),
        ("raw update_status", f"{report.raw_store_per_s:,.0f}/s", "RecordStore: read + CAS"),
        ("controller", f"{report.controller_per_s:,.0f}/s", "list+watch+queue+reconcile+status"),
        ("ratio to raw CAS", f"{report.ratio_to_raw_kv:.2f}x", "goal >= 0.6x"),
        ("ratio to raw update_status", f"{report.ratio_to_raw_store:.2f}x", ""),
        (
            "write -> reconcile start",
            f"p50 {report.latency_p50_ms:.1f} ms, p99 {report.latency_p99_ms:.1f} ms",
            f"{report.latency_samples} at {report.latency_rate_per_s:.0f}/s; goal p99 <= 20 ms",
        ),
        ("cache per record", f"{report.cache_bytes_per_record:,.0f} B", "goal <= 3 KiB"),
        ("idle CPU", f"{report.idle_cpu_percent:.2f} %", "controller process, converged"),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b:<{vwidth}}  {c}" for a, b, c in rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-rate", type=float, default=100.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(asdict(report), indent=2) if args.output == "json" else table(report))


if __name__ == "__main__":
    main()
