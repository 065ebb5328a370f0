"""zunctl against a running `zun-controller api` on real etcd (no engine needed): apply of a
directory of multi-document YAML, configured/unchanged, diff's exit status, output formats,
get -w, delete -f, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from zunctl_bed import ZUNCTL, ApiOnly, zunctl

from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e

TWO = """\
apiVersion: zun.openstack.org/v1alpha1
kind: Container
metadata: {name: web, labels: {tier: front}}
spec: {image: zun-test/httpd:v1}
---
apiVersion: zun.openstack.org/v1alpha1
kind: Volume
metadata: {name: data}
spec: {}
"""


@pytest.fixture
def api(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[ApiOnly]:
    server = ApiOnly(tmp_path, own_etcd.url)
    yield server
    server.stop()


@pytest.mark.timeout(300)  # ~15 zunctl processes; slow when the shared cores are busy
def test_apply_diff_get_delete(api: ApiOnly, tmp_path: Path) -> None:
    def ctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return zunctl(api.url, api.token, "demo", *args, stdin=stdin)

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "all.yaml").write_text(TWO)
    first = ctl("apply", "-f", str(tmp_path / "m"))
    assert first.stdout.splitlines() == [
        "container.zun.openstack.org/web created",
        "volume.zun.openstack.org/data created",
    ], first.stderr
    changed = TWO.replace("httpd:v1", "httpd:v2")
    assert ctl("diff", "-f", "-", stdin=changed).returncode == 1
    second = ctl("apply", "-f", "-", stdin=changed)
    assert second.stdout.splitlines() == [
        "container.zun.openstack.org/web configured",
        "volume.zun.openstack.org/data unchanged",
    ]
    assert ctl("diff", "-f", "-", stdin=changed).returncode == 0

    as_yaml = yaml.safe_load(ctl("get", "container", "web", "-o", "yaml").stdout)
    assert as_yaml["spec"]["image"] == "zun-test/httpd:v2"
    assert as_yaml["metadata"]["generation"] == 2
    listed = json.loads(ctl("get", "ctr", "-o", "json").stdout)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["web"]
    wide = ctl("get", "containers", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "PHASE", "HOST", "IMAGE", "AGE", "LABELS"]
    assert "tier=front" in wide[1]

    env = {**os.environ, "ZUN_URL": api.url, "ZUN_TOKEN": api.token, "ZUN_PROJECT": "demo"}
    with subprocess.Popen(
        [ZUNCTL, "-p", "demo", "get", "ctr", "-A", "-w", "-l", "tier=front"],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as w:
        assert w.stdout is not None
        try:
            header = w.stdout.readline()
            assert header.split()[:4] == ["EVENT", "PROJECT", "NAME", "PHASE"]
            added = w.stdout.readline()  # the Volume has no label tier=front: not listed
            assert added.split()[:3] == ["ADDED", "demo", "web"]
            assert added.index("web") == header.index("NAME")  # aligned under the header
            assert ctl("delete", "-f", "-", stdin=changed).returncode == 0
            assert w.stdout.readline().split()[:3] == ["DELETED", "demo", "web"]
        finally:
            w.kill()
    assert ctl("get", "volumes").stdout.strip() == "No resources found."


@pytest.mark.timeout(200)
def test_errors_are_one_line(api: ApiOnly) -> None:
    def ctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return zunctl(api.url, api.token, "demo", *args, stdin=stdin)

    bad = ctl("apply", "-f", "-", stdin=TWO.replace("zun-test/httpd:v1", "''"))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("zunctl: <stdin>: spec.image:")
    assert ctl("apply", "-f", "-", "--prune", stdin=TWO).stderr.startswith("zunctl: --prune")
    assert ctl("get", "nosuchkind").stderr.startswith("zunctl: unknown kind 'nosuchkind'")
    missing = ctl("delete", "volume", "nope")
    assert missing.returncode == 1
    assert missing.stderr == "zunctl: volumes 'nope' not found in project 'demo'\n"
    assert ctl("get", "ctr", "-o", "toml").returncode == 2
