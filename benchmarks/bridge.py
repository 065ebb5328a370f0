"""Bridge benchmark: N custom resources that each become a Deployment on one control plane,
through Zun (bridge -> store -> Application reconciler -> Kubernetes orchestrator) and through a
minimal kopf operator that does the same directly (benchmarks/kopf_baseline.py), in one run.

    .venv/bin/python -m benchmarks.bridge [--count 500] [-o json]

Needs the Kubernetes test bed (hack/kube-build.sh) and etcd. Prints the time from applying the
N resources to all N Deployments ready (pods Ready through kwok), the CPU the Zun processes
(controller + bridge) and the kopf operator used meanwhile, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.kopf_baseline import CRD as BASELINE_CRD
from zun_controller.engine.leader import LEASE_ROOT
from zun_controller.models.registry import parse
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer, free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from testbed.kube import KubeControlPlane, start_control_plane  # type: ignore[import-not-found]  # noqa: E402

ZUN = str(Path(sys.executable).with_name("zun-controller"))
KOPF = str(Path(sys.executable).with_name("kopf"))
IMAGE = "zun-test/httpd:v1"
PODS_PER_NODE = 100


@dataclass
class Report:
    count: int
    zun_seconds: float = 0.0
    kopf_seconds: float = 0.0
    zun_cpu_seconds: float = 0.0
    kopf_cpu_seconds: float = 0.0
    time_ratio: float = 0.0
    cpu_ratio: float = 0.0


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready_deployments(kube: KubeControlPlane, namespace: str) -> int:
    items = kube.kubectl_json("get", "deploy", "-n", namespace, timeout=120)["items"]
    return sum(1 for d in items if d.get("status", {}).get("readyReplicas", 0) >= 1)


def wait_ready(kube: KubeControlPlane, namespace: str, count: int, limit: float) -> float:
    start, last = time.monotonic(), -1
    while (ready := ready_deployments(kube, namespace)) < count:
        if ready != last:
            progress(f"{namespace}: {ready}/{count} Deployments ready")
            last = ready
        if time.monotonic() - start > limit:
            raise TimeoutError(f"{namespace}: only {ready}/{count} ready after {limit}s")
        time.sleep(2)
    return time.monotonic()


def apply_docs(kube: KubeControlPlane, docs: list[dict[str, Any]]) -> None:
    text = "\n---\n".join(json.dumps(d) for d in docs)
    kube.kubectl_run("apply", "-f", "-", input_text=text, timeout=600)


def zun_docs(namespace: str, count: int) -> list[dict[str, Any]]:
    spec = {
        "cluster": "bench",
        "replicas": 1,
        "template": {"containers": [{"name": "web", "image": IMAGE}]},
    }
    return [{"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Application",
             "metadata": {"name": f"a{i:04d}", "namespace": namespace}, "spec": spec}
            for i in range(count)]  # fmt: skip


def kopf_docs(namespace: str, count: int) -> list[dict[str, Any]]:
    return [{"apiVersion": "bench.zun.openstack.org/v1", "kind": "BenchApp",
             "metadata": {"name": f"k{i:04d}", "namespace": namespace},
             "spec": {"image": IMAGE, "replicas": 1}} for i in range(count)]  # fmt: skip


async def register_cluster(etcd: EtcdServer, kubeconfig: str) -> None:
    kv = EtcdKV.from_url(etcd.url)
    store = RecordStore(kv)
    api = "zun.openstack.org/v1alpha1"
    secret = {"apiVersion": api, "kind": "Secret", "metadata": {"name": "bench-kube"},
              "spec": {"data": {"kubeconfig": kubeconfig}}}  # fmt: skip
    cluster_spec = {"type": "kubernetes", "kubeconfigSecret": {"name": "bench-kube"}}
    cluster = {"apiVersion": api, "kind": "Cluster", "metadata": {"name": "bench"},
               "spec": cluster_spec}  # fmt: skip
    await store.create(parse(secret))
    await store.create(parse(cluster))
    await kv.close()


async def wait_elected(etcd: EtcdServer, leases: tuple[str, ...], limit: float = 60) -> None:
    """Until each process holds its lease (it acts from then on)."""
    kv = EtcdKV.from_url(etcd.url)
    try:
        deadline = time.monotonic() + limit
        while not all([await kv.get(LEASE_ROOT + name) for name in leases]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all of {leases} elected within {limit}s")
            await asyncio.sleep(0.2)
    finally:
        await kv.close()


def wait_live(url: str, limit: float = 60) -> None:
    """Until kopf's liveness endpoint answers (its startup is over)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {limit}s")
        time.sleep(0.2)


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def measure_zun(kube: KubeControlPlane, tmp: Path, count: int, report: Report) -> None:
    etcd = EtcdServer(tmp / "etcd")
    etcd.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(register_cluster(etcd, kube.kubeconfig.read_text()))
        env = kube.env()
        procs.append(
            start(
                [ZUN, "run", "--etcd", etcd.url, "--health-port", "0", "--workers", "8"],
                tmp / "run.log",
                env,
            )
        )
        bridge_cmd = [ZUN, "bridge", "--etcd", etcd.url, "--kubeconfig", str(kube.kubeconfig)]
        procs.append(start([*bridge_cmd, "--health-port", "0"], tmp / "bridge.log", env))
        kube.kubectl_run("create", "namespace", "zb")
        asyncio.run(wait_elected(etcd, ("zun-controller", "zun-bridge")))
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        progress(f"zun: applying {count} Applications")
        start_at = time.monotonic()
        apply_docs(kube, zun_docs("zb", count))
        end = wait_ready(kube, "zb", count, limit=1800)
        report.zun_seconds = end - start_at
        report.zun_cpu_seconds = sum(cpu_seconds(p.pid) for p in procs) - cpu0
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        etcd.stop()


def measure_kopf(kube: KubeControlPlane, tmp: Path, count: int, report: Report) -> None:
    apply_docs(kube, [BASELINE_CRD])
    kube.kubectl_run(
        "wait", "--for=condition=Established", f"crd/{BASELINE_CRD['metadata']['name']}"
    )
    kube.kubectl_run("create", "namespace", "zk")
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    cmd = [KOPF, "run", "--standalone", "-n", "zk", f"--liveness={liveness}"]
    proc = start(
        [*cmd, str(ROOT / "benchmarks" / "kopf_baseline.py")], tmp / "kopf.log", kube.env()
    )
    try:
        wait_live(liveness)
        cpu0 = cpu_seconds(proc.pid)
        progress(f"kopf: applying {count} BenchApps")
        start_at = time.monotonic()
        apply_docs(kube, kopf_docs("zk", count))
        end = wait_ready(kube, "zk", count, limit=1800)
        report.kopf_seconds = end - start_at
        report.kopf_cpu_seconds = cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(30)


def run(count: int) -> Report:
    report = Report(count=count)
    with tempfile.TemporaryDirectory(prefix="zun-bench-bridge-") as tmp_name:
        tmp = Path(tmp_name)
        # a kwok node takes 110 pods; both runs' pods stay until the end
        kube = start_control_plane(tmp / "kube", nodes=max(2, -(-2 * count // PODS_PER_NODE)))
        try:
            kube.kubectl_run("apply", "-f", str(ROOT / "crds"))
            kube.kubectl_run("wait", "--for=condition=Established", "crd", "--all", timeout=60)
            measure_kopf(kube, tmp, count, report)
            measure_zun(kube, tmp, count, report)
        finally:
            kube.stop()
    report.time_ratio = report.zun_seconds / report.kopf_seconds
    report.cpu_ratio = report.zun_cpu_seconds / max(report.kopf_cpu_seconds, 1e-9)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    report = run(args.count)
    if args.output == "json":
        print(json.dumps(asdict(report), indent=2))
        return
    print(f"{report.count} custom resources -> Deployments ready")
    kopf_line = f"{report.kopf_seconds:7.1f} s   CPU {report.kopf_cpu_seconds:6.1f} s"
    print(f"minimal kopf operator  {kopf_line}")
    print(
        f"zun (bridge+controller){report.zun_seconds:7.1f} s   CPU {report.zun_cpu_seconds:6.1f} s"
    )
    print(f"ratio zun/kopf         time {report.time_ratio:.2f}x   CPU {report.cpu_ratio:.2f}x")


if __name__ == "__main__":
    main()
