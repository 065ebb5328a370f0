"""Credentials at rest, as an operator meets them: Secrets written through the API are sealed in
a real etcd (read back with `etcdctl`, outside Zun), a key rotation keeps old and new readable
across restarts, `zun-controller rewrap` leaves only the new key id, and the controller still
uses the Secret a Cluster names; `rewrap --decrypt` is the way back."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from zun_bed import ZUN, ZunBed
from zunctl_bed import ApiOnly, free_port

from zun_controller.models.application import Cluster, Secret, SecretSpec
from zun_controller.models.base import ObjectMeta
from zun_controller.store.codec import encode
from zun_controller.store.keyfile import KeyRing, load_key_file, write_key_file
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
PASSWORD = "s3cret-token-of-the-admin"
SECRETS = "/apis/zun.openstack.org/v1alpha1/secrets"
PREFIX = "/zun/registry/secrets/"


def etcdctl(etcd: EtcdServer, *args: str) -> bytes:
    env = {**os.environ, "ETCDCTL_API": "3"}
    cmd = ["etcdctl", "--endpoints", etcd.url, *args]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def raw(etcd: EtcdServer, name: str) -> bytes:
    """The value etcd holds for Secret `name`, as any etcd client or backup sees it."""
    return etcdctl(etcd, "get", "--print-value-only", PREFIX + name).removesuffix(b"\n")


def zun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ZUN, *args], capture_output=True, text=True, timeout=120, check=False)


def kubeconfig(port: int) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
            "users": [{"name": "u", "user": {"token": PASSWORD}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


class Api:
    def __init__(self, tmp: Path, etcd: EtcdServer, keys: Path | None) -> None:
        extra = ("--encryption-key-file", str(keys)) if keys else ()
        self.proc = ApiOnly(tmp, etcd.url, *extra)
        self.http = httpx.Client(
            base_url=self.proc.url, headers={"Authorization": f"Bearer {self.proc.token}"}
        )

    def create(self, name: str, data: dict[str, str]) -> None:
        body = {"kind": "Secret", "metadata": {"name": name}, "spec": {"data": data}}
        made = self.http.post(SECRETS, json=body)
        assert made.status_code == 201, made.text

    def data(self, name: str) -> Any:
        got = self.http.get(f"{SECRETS}/{name}")
        assert got.status_code == 200, got.text
        return got.json()["spec"]["data"]

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


def test_secrets_are_sealed_rotated_and_rewrapped(own_etcd: EtcdServer, tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    assert zun("keygen", str(keys), "--id", "k1").returncode == 0
    legacy = Secret(metadata=ObjectMeta(name="legacy"), spec=SecretSpec(data={"pw": PASSWORD}))
    etcdctl(own_etcd, "put", PREFIX + "legacy", encode(legacy).decode())

    api = Api(tmp_path, own_etcd, keys)
    api.create("old", {"pw": PASSWORD})
    api.stop()
    assert raw(own_etcd, "old").startswith(b"zun:enc:aesgcm:v1:k1:")
    assert PASSWORD.encode() not in raw(own_etcd, "old")
    assert PASSWORD.encode() in raw(own_etcd, "legacy")  # written before encryption was on

    with pytest.raises(AssertionError) as refused:
        Api(tmp_path, own_etcd, None)
    assert "encrypted under key id 'k1' (1 values): pass the key file" in str(refused.value)

    assert zun("keygen", str(keys), "--id", "k2").returncode == 0
    api = Api(tmp_path, own_etcd, keys)
    api.create("new", {"pw": "fresh"})
    assert api.data("old") == {"pw": PASSWORD} and api.data("new") == {"pw": "fresh"}
    assert api.data("legacy") == {"pw": PASSWORD}
    assert raw(own_etcd, "new").startswith(b"zun:enc:aesgcm:v1:k2:")
    api.stop()

    done = zun("rewrap", "--etcd", own_etcd.url, "--encryption-key-file", str(keys), "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "keyId": "k2",
        "scanned": 3,
        "rewrapped": 1,
        "sealedPlain": 1,
        "current": 1,
        "conflicts": 0,
        "before": {"(plain)": 1, "k1": 1, "k2": 1},
    }
    assert "rewrap: 3 scanned" in done.stderr
    for name in ("legacy", "new", "old"):
        value = raw(own_etcd, name)
        assert value.startswith(b"zun:enc:aesgcm:v1:k2:") and PASSWORD.encode() not in value

    ring = load_key_file(keys)
    write_key_file(keys, KeyRing((ring.keys[0],)))  # k1 retired
    api = Api(tmp_path, own_etcd, keys)
    assert api.data("old") == {"pw": PASSWORD} and api.data("legacy") == {"pw": PASSWORD}
    api.stop()

    # the way back, for a rollback: every value plain, then no key file is needed
    args = ("--etcd", own_etcd.url, "--encryption-key-file", str(keys), "--decrypt", "-o", "json")
    done = zun("rewrap", *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rewrapped"] == 3
    assert PASSWORD.encode() in raw(own_etcd, "old")
    api = Api(tmp_path, own_etcd, None)
    assert api.data("old") == {"pw": PASSWORD}
    api.stop()


async def test_the_controller_reads_a_sealed_kubeconfig(
    own_etcd: EtcdServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.yaml"
    assert zun("keygen", str(keys), "--id", "k1").returncode == 0
    api = Api(tmp_path, own_etcd, keys)
    nobody = free_port()
    api.create("kube", {"kubeconfig": kubeconfig(nobody)})
    cluster = {
        "kind": "Cluster",
        "metadata": {"name": "k8s"},
        "spec": {"type": "kubernetes", "kubeconfigSecret": {"name": "kube"}},
    }
    made = api.http.post("/apis/zun.openstack.org/v1alpha1/clusters", json=cluster)
    assert made.status_code == 201, made.text
    api.stop()
    assert PASSWORD.encode() not in raw(own_etcd, "kube")

    bed = ZunBed(own_etcd, tmp_path, ())
    bed.env["ZUN_ENCRYPTION_KEY_FILE"] = str(keys)
    bed.start()
    try:

        async def probed() -> Cluster | None:
            found = await bed.store.get(Cluster, "k8s")
            ready = found.status.condition("Ready")
            return found if ready and ready.status == "False" else None

        found = await bed.until(probed, 60, "Cluster k8s probed")
        ready = found.status.condition("Ready")
        assert ready is not None
        # it opened the Secret, parsed the kubeconfig and dialled the server it names
        assert ready.reason == "Unreachable" and ready.message.startswith("kubernetes: "), ready
        assert PASSWORD not in json.dumps(found.to_wire())
    finally:
        bed.stop()
        await bed.close()
