"""Encryption benchmark: what sealing Secrets costs, against plain values measured in the same run.

    .venv/bin/python -m benchmarks.encryption [--count 2000] [--rounds 5] [--no-etcd] [-o json]

Two parts, each plain against sealed (AES-256-GCM, store/encryption.py):

- codec: per value, the CPU time of `encode` of a Secret holding a ~5 KiB kubeconfig against
  `encode` + seal, and `decode` against open + `decode` (and seal and open alone); rounds
  alternate plain and sealed so CPU steal hits both alike, and the median round counts.
- etcd (unless --no-etcd): `count` Secrets created through `RecordStore` (64 in flight), then
  listed (5 times, the median counts), on an etcd it starts itself; plain and sealed
  alternate for `--etcd-rounds` rounds after one uncounted warm-up round, and the medians
  count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from zun_controller.models.application import Secret, SecretSpec
from zun_controller.models.base import ObjectMeta
from zun_controller.store.codec import decode, encode
from zun_controller.store.encryption import Sealer, SealingKV
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.keyfile import KeyRing, new_key
from zun_controller.store.keys import record_key
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

KEY = record_key(Secret.KIND, "kube-admin", None)
#: lists per round (their median counts): one list is short enough for noise to dominate
LISTS = 5


@dataclass
class Report:
    value_bytes: int = 0
    encode_us: float = 0.0
    encode_sealed_us: float = 0.0
    decode_us: float = 0.0
    decode_sealed_us: float = 0.0
    encode_ratio: float = 0.0
    decode_ratio: float = 0.0
    seal_us: float = 0.0
    open_us: float = 0.0
    count: int = 0
    create_plain_per_s: float = 0.0
    create_sealed_per_s: float = 0.0
    create_ratio: float = 0.0
    list_plain_ms: float = 0.0
    list_sealed_ms: float = 0.0
    list_ratio: float = 0.0


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def kubeconfig_secret(name: str = "kube-admin") -> Secret:
    """A Secret as a Cluster's: a kubeconfig with an inline CA, client certificate and key."""
    blob = base64.b64encode(os.urandom(1200)).decode()
    text = (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
        f"    server: https://10.0.0.1:6443\n    certificate-authority-data: {blob}\n"
        f"users:\n- name: u\n  user:\n    client-certificate-data: {blob}\n"
        f"    client-key-data: {blob}\n"
        "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
    )
    return Secret(metadata=ObjectMeta(name=name), spec=SecretSpec(data={"kubeconfig": text}))


def per_op_us(fn: Callable[[], object], n: int) -> float:
    """CPU time of one call, in microseconds: the process's own, so other processes on the
    shared cores do not count (they still slow caches and clocks)."""
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def measure_codec(report: Report, rounds: int, n: int) -> None:
    obj = kubeconfig_secret()
    sealer = Sealer(KeyRing((new_key("bench"),)))
    plain = encode(obj)
    sealed = sealer.seal(KEY, plain)
    report.value_bytes = len(plain)
    runs: dict[str, list[float]] = {
        "enc": [], "enc_s": [], "dec": [], "dec_s": [], "seal": [], "open": []
    }  # fmt: skip
    per_op_us(lambda: decode(Secret, sealer.open(KEY, sealer.seal(KEY, encode(obj))), 1), n)
    for i in range(rounds):
        progress(f"codec: round {i + 1} of {rounds}, {n} values each way")
        runs["enc"].append(per_op_us(lambda: encode(obj), n))
        runs["enc_s"].append(per_op_us(lambda: sealer.seal(KEY, encode(obj)), n))
        runs["dec"].append(per_op_us(lambda: decode(Secret, plain, 1), n))
        runs["dec_s"].append(per_op_us(lambda: decode(Secret, sealer.open(KEY, sealed), 1), n))
        runs["seal"].append(per_op_us(lambda: sealer.seal(KEY, plain), n))
        runs["open"].append(per_op_us(lambda: sealer.open(KEY, sealed), n))
    med = {k: statistics.median(v) for k, v in runs.items()}
    report.encode_us, report.encode_sealed_us = med["enc"], med["enc_s"]
    report.decode_us, report.decode_sealed_us = med["dec"], med["dec_s"]
    report.seal_us, report.open_us = med["seal"], med["open"]
    report.encode_ratio = med["enc_s"] / med["enc"]
    report.decode_ratio = med["dec_s"] / med["dec"]


async def create_and_list(store: RecordStore, count: int, tag: str) -> tuple[float, float]:
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with gate:
            await store.create(kubeconfig_secret(f"{tag}-{i:05d}"))

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    created = count / (time.perf_counter() - start)
    lists = []
    for _ in range(LISTS):
        start = time.perf_counter()
        listed = await store.list(Secret)
        lists.append((time.perf_counter() - start) * 1000)
        assert len(listed.items) == count
    return created, statistics.median(lists)


async def measure_etcd(report: Report, count: int, rounds: int) -> None:
    """Plain and sealed alternate, `rounds` times each (the first pass warms etcd up and is
    not counted); the median of each counts."""
    report.count = count
    got: dict[str, list[tuple[float, float]]] = {"plain": [], "sealed": []}
    with tempfile.TemporaryDirectory(prefix="zun-bench-") as tmp:
        server = EtcdServer(Path(tmp) / "etcd")
        server.start()
        raw = EtcdKV.from_url(server.url, timeout=30)
        sealed = SealingKV(raw, Sealer(KeyRing((new_key("bench"),))))
        try:
            for i in range(rounds + 1):
                for label, kv in (("plain", raw), ("sealed", sealed)):
                    progress(f"etcd: round {i} of {rounds}: {count} Secrets, {label}")
                    await raw.delete_prefix("/zun/registry/secrets/")
                    measured = await create_and_list(RecordStore(kv), count, label)
                    if i:
                        got[label].append(measured)
        finally:
            await raw.close()
            server.stop()
    for label, runs in got.items():
        setattr(report, f"create_{label}_per_s", statistics.median(c for c, _ in runs))
        setattr(report, f"list_{label}_ms", statistics.median(m for _, m in runs))
    report.create_ratio = report.create_sealed_per_s / report.create_plain_per_s
    report.list_ratio = report.list_sealed_ms / report.list_plain_ms


def table(r: Report) -> str:
    rows = [
        ("value (a kubeconfig Secret)", f"{r.value_bytes:,} B", "compact JSON"),
        ("encode", f"{r.encode_us:.1f} us", "plain"),
        ("encode + seal", f"{r.encode_sealed_us:.1f} us", f"{r.encode_ratio:.2f}x plain"),
        ("decode", f"{r.decode_us:.1f} us", "plain"),
        ("open + decode", f"{r.decode_sealed_us:.1f} us", f"{r.decode_ratio:.2f}x plain"),
        ("seal alone", f"{r.seal_us:.1f} us", "AES-256-GCM, random nonce"),
        ("open alone", f"{r.open_us:.1f} us", ""),
    ]
    if r.count:
        rows += [
            (f"etcd create x{r.count}, plain", f"{r.create_plain_per_s:,.0f}/s", "64 in flight"),
            ("etcd create, sealed", f"{r.create_sealed_per_s:,.0f}/s", f"{r.create_ratio:.2f}x"),
            ("etcd list, plain", f"{r.list_plain_ms:.0f} ms", ""),
            ("etcd list, sealed", f"{r.list_sealed_ms:.0f} ms", f"{r.list_ratio:.2f}x"),
        ]
    width = max(len(a) for a, _, _ in rows)
    return "\n".join(f"{a:<{width}}  {b:>12}  {c}" for a, b, c in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=2000, help="Secrets written to etcd")
    parser.add_argument("--rounds", type=int, default=5, help="codec rounds, alternating")
    parser.add_argument("--values", type=int, default=5000, help="values per codec round")
    parser.add_argument("--etcd-rounds", type=int, default=3, help="etcd rounds, alternating")
    parser.add_argument("--no-etcd", action="store_true", help="the codec part only")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    report = Report()
    measure_codec(report, args.rounds, args.values)
    if not args.no_etcd:
        asyncio.run(measure_etcd(report, args.count, args.etcd_rounds))
    print(json.dumps(asdict(report), indent=2) if args.output == "json" else table(report))


if __name__ == "__main__":
    main()
