"""REST API benchmark on loopback: create and get latency at fixed request rates, beside the
raw etcd put/get latency of the same etcd client (EtcdKV) at the same rates.

    .venv/bin/python -m benchmarks.api [--seconds 5] [--create-rate 200] [--get-rate 1000] [-o json]

One etcd is started here (temp dir); `zun-controller api` runs as its own process; the load is
open-loop: request i is due at start + i/rate and its latency is counted from when it was due,
so a server that falls behind shows it (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from zun_controller.api.auth import Role, Tokens
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.kv import Txn
from zun_controller.store.server import EtcdServer

P = "/apis/zun.openstack.org/v1alpha1/projects/bench/containers"
ZUN = str(Path(sys.executable).with_name("zun-controller"))


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def open_loop(
    rate: float, seconds: float, call: Callable[[int], Awaitable[bool]]
) -> dict[str, Any]:
    """Run call(i) at `rate`/s for `seconds`; latencies from each call's due time."""
    n = int(rate * seconds)
    start = time.perf_counter() + 0.05
    latencies: list[float] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            ok = await call(i)
        except httpx.HTTPError:
            ok = False
        latencies.append(time.perf_counter() - due)
        errors += not ok

    await asyncio.gather(*(one(i) for i in range(n)))
    return {
        "n": n,
        "errors": errors,
        "p50_ms": round(pct(latencies, 0.50), 2),
        "p99_ms": round(pct(latencies, 0.99), 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server_phase(
    pid: int, rate: float, seconds: float, call: Callable[[int], Awaitable[bool]]
) -> dict[str, Any]:
    """An open-loop phase, plus the API process's CPU per request (independent of queueing)."""
    before, client_before = cpu_seconds(pid), time.process_time()
    figures = await open_loop(rate, seconds, call)
    figures["server_cpu_ms_per_request"] = round(
        (cpu_seconds(pid) - before) * 1000 / figures["n"], 2
    )
    # the load generator's own CPU: on 2 cores it competes with the server it measures
    figures["client_cpu_ms_per_request"] = round(
        (time.process_time() - client_before) * 1000 / figures["n"], 2
    )
    return figures


def body(i: int) -> dict[str, Any]:
    return {"kind": "Container", "metadata": {"name": f"c{i}"}, "spec": {"image": "x"}}


async def measure(
    etcd_url: str, api_url: str, token: str, pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    kv = EtcdKV.from_url(etcd_url)
    # idle connections expire before uvicorn's 5 s keep-alive closes them under the client
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512, keepalive_expiry=3)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, limits=limits, timeout=10) as c:

        async def create(i: int) -> bool:
            return (await c.post(P, json=body(i))).status_code == 201

        async def get(i: int) -> bool:
            name = f"c{random.randrange(created)}"
            return (await c.get(f"{P}/{name}")).status_code == 200

        async def raw_put(i: int) -> bool:
            key = f"/bench/raw/{i}"
            return (await kv.commit(Txn(compares=[(key, 0)], puts=[(key, b"x" * 200)]))).succeeded

        async def raw_get(i: int) -> bool:
            return await kv.get(f"/bench/raw/{random.randrange(created)}") is not None

        for _ in range(20):  # warm both paths (connections, first imports)
            await c.get(f"{P}?limit=1")
            await kv.get("/bench/warm")
        created = int(args.create_rate * args.seconds)
        report = {
            "seconds": args.seconds,
            "raw_put": await open_loop(args.create_rate, args.seconds, raw_put),
            "api_create": await server_phase(pid, args.create_rate, args.seconds, create),
            "raw_get": await open_loop(args.get_rate, args.seconds, raw_get),
            "api_get": await server_phase(pid, args.get_rate, args.seconds, get),
        }
    await kv.close()
    return report


async def admin_token(etcd_url: str) -> str:
    kv = EtcdKV.from_url(etcd_url)
    try:
        return await Tokens(kv).create("bench", Role.ADMIN, [])
    finally:
        await kv.close()


def start_api(etcd_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [ZUN, "api", "--etcd", etcd_url, "--api-port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "is up" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"api did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--create-rate", type=float, default=200.0)
    parser.add_argument("--get-rate", type=float, default=1000.0)
    parser.add_argument("--port", type=int, default=0, help="API port (0: a free one)")
    parser.add_argument("-o", dest="output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        etcd = EtcdServer(Path(tmp) / "etcd")
        etcd.start()
        port = args.port or _free_port()
        proc = start_api(etcd.url, port, Path(tmp) / "api.log")
        try:
            token = asyncio.run(admin_token(etcd.url))
            url = f"http://127.0.0.1:{port}"
            report = asyncio.run(measure(etcd.url, url, token, proc.pid, args))
        finally:
            proc.terminate()
            proc.wait(30)
            etcd.stop()
    report["goal_create_p99_ms"] = 25
    if args.output == "json":
        print(json.dumps(report))
        return
    for name in ("raw_put", "api_create", "raw_get", "api_get"):
        r = report[name]
        line = f"{name:<11} n={r['n']:<6} p50={r['p50_ms']:>7} ms  p99={r['p99_ms']:>7} ms"
        cpu = r.get("server_cpu_ms_per_request")
        client = r.get("client_cpu_ms_per_request")
        extra = f"  cpu/request: server {cpu} ms, client {client} ms" if cpu else ""
        print(f"{line}  errors={r['errors']}{extra}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    main()
