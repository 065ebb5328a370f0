"""`zunctl apply --prune` and `diff` against a running API on real etcd: only what this
apply-set created is pruned."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from zunctl_bed import ApiOnly, zunctl

from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


def ctr(name: str, image: str = "zun-test/httpd:v1") -> str:
    return (
        "apiVersion: zun.openstack.org/v1alpha1\nkind: Container\n"
        f"metadata: {{name: {name}}}\nspec: {{image: '{image}'}}\n"
    )


@pytest.fixture
def api(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[ApiOnly]:
    server = ApiOnly(tmp_path, own_etcd.url)
    yield server
    server.stop()


@pytest.mark.timeout(300)
def test_prune_deletes_only_what_the_apply_set_made(api: ApiOnly, tmp_path: Path) -> None:
    def ctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return zunctl(api.url, api.token, "demo", *args, stdin=stdin)

    site = tmp_path / "site"
    site.mkdir()
    (site / "a.yaml").write_text(ctr("a"))
    (site / "b.yaml").write_text(ctr("b") + "---\n" + ctr("c"))
    first = ctl("apply", "-f", str(site), "--prune")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(" created") == 3
    hand = ctl("apply", "-f", "-", stdin=ctr("by-hand"))
    assert hand.returncode == 0, hand.stderr

    same = ctl("diff", "-f", str(site), "--applyset", "site")
    assert same.returncode == 0, same.stdout
    (site / "a.yaml").write_text(ctr("a", "zun-test/httpd:v2"))
    changed = ctl("diff", "-f", str(site), "--applyset", "site")
    assert changed.returncode == 1 and "zun-test/httpd:v2" in changed.stdout

    (site / "b.yaml").write_text(ctr("b"))
    second = ctl("apply", "-f", str(site), "--prune")
    assert second.returncode == 0, second.stderr
    assert "container.zun.openstack.org/c pruned" in second.stdout
    assert "container.zun.openstack.org/a configured" in second.stdout
    names = ctl("get", "containers", "-o", "json")
    assert names.returncode == 0
    for kept in ("a", "b", "by-hand"):
        assert f'"name": "{kept}"' in names.stdout
    assert '"name": "c"' not in names.stdout
    assert ctl("apply", "-f", "-", "--prune", stdin=ctr("x")).returncode == 2


def _labels(ctl: Any, name: str) -> dict[str, str]:
    shown = ctl("get", "container", name, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout)["metadata"].get("labels") or {})


@pytest.mark.timeout(300)
def test_an_apply_set_never_takes_over_another_writers_record(api: ApiOnly, tmp_path: Path) -> None:
    def ctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return zunctl(api.url, api.token, "demo", *args, stdin=stdin)

    assert ctl("apply", "-f", "-", stdin=ctr("web")).returncode == 0  # made by hand
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.yaml").write_text(ctr("web", "zun-test/httpd:v2") + "---\n" + ctr("api"))
    refused = ctl("apply", "-f", str(site), "--prune")
    assert refused.returncode == 1
    assert (
        "zunctl: container.zun.openstack.org/web: owned by no writer (made by hand through "
        "the API); not changed (--force-conflicts or annotation zun.openstack.org/adopt: "
        '"true" adopts it)'
    ) in refused.stderr
    assert "container.zun.openstack.org/api created" in refused.stdout
    web = json.loads(ctl("get", "container", "web", "-o", "json").stdout)
    assert web["spec"]["image"] == "zun-test/httpd:v1" and not web["metadata"].get("labels")

    (site / "a.yaml").write_text(ctr("web", "zun-test/httpd:v2"))
    pruned = ctl("apply", "-f", str(site), "--prune")
    assert pruned.returncode == 1 and "container.zun.openstack.org/api pruned" in pruned.stdout
    assert ctl("get", "container", "web").returncode == 0  # not the apply-set's to prune

    taken = ctl("apply", "-f", str(site), "--prune", "--force-conflicts")
    assert taken.returncode == 0, taken.stderr
    assert "container.zun.openstack.org/web configured" in taken.stdout
    assert _labels(ctl, "web") == {"zun.openstack.org/applyset": "site"}
    # a hand apply afterwards edits the spec but leaves the record the apply-set's
    assert ctl("apply", "-f", "-", stdin=ctr("web")).returncode == 0
    assert _labels(ctl, "web") == {"zun.openstack.org/applyset": "site"}
    (site / "a.yaml").write_text(ctr("other"))
    assert ctl("apply", "-f", str(site), "--prune").returncode == 0
    assert ctl("get", "container", "web").returncode == 1  # adopted, so pruned with the set
