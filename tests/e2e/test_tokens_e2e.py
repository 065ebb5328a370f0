"""Token lifetimes and revocation as a user meets them: two `zun-controller api` replicas on
one etcd, tokens made by `zun-controller token` and through the REST API, `zunctl token`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from zunctl_bed import ZUN, ApiOnly, zunctl

from zun_controller.api.auth import Role, Tokens, digest
from zun_controller.api.errors import ApiError
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
P = "/apis/zun.openstack.org/v1alpha1"


@pytest.fixture
def replicas(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[tuple[ApiOnly, ApiOnly]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = ApiOnly(tmp_path / "a", own_etcd.url)
    try:
        b = ApiOnly(tmp_path / "b", own_etcd.url)
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def containers(api: ApiOnly, token: str) -> httpx.Response:
    return httpx.get(f"{api.url}{P}/projects/demo/containers", headers=as_(token), timeout=5)


def make(api: ApiOnly, name: str, **extra: object) -> str:
    body = {"name": name, "role": "member", "projects": ["demo"], **extra}
    made = httpx.post(f"{api.url}{P}/tokens", json=body, headers=as_(api.token), timeout=5)
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


def refused_within(api: ApiOnly, token: str, seconds: float) -> tuple[float, httpx.Response]:
    """Seconds until `api` refuses `token` (asked in a loop), and its answer."""
    start = time.monotonic()
    while True:
        answer = containers(api, token)
        if answer.status_code == 401:
            return time.monotonic() - start, answer
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - start < seconds, f"still accepted after {seconds}s"
        time.sleep(0.02)


def test_a_token_revoked_through_one_replica_is_refused_by_the_other_within_a_second(
    replicas: tuple[ApiOnly, ApiOnly],
) -> None:
    a, b = replicas
    token = make(a, "victim")
    for _ in range(3):  # B knows it (from its view, once its watch has delivered it)
        assert containers(b, token).status_code == 200
    revoked = httpx.delete(f"{a.url}{P}/tokens/victim", headers=as_(a.token), timeout=5)
    assert revoked.status_code == 200 and revoked.json()["revoked"] == 1
    took, answer = refused_within(b, token, 5.0)
    print(f"replica B refused the revoked token after {took:.3f}s")
    assert took <= 1.0, f"replica B accepted a revoked token for {took:.3f}s"
    assert "revoked" in answer.json()["message"]
    assert containers(a, token).status_code == 401


def test_a_token_with_a_2s_lifetime_works_then_is_refused(
    replicas: tuple[ApiOnly, ApiOnly], own_etcd: EtcdServer
) -> None:
    a, b = replicas
    made = subprocess.run(
        [ZUN, "token", "--name", "short", "--role", "member", "--project", "demo",
         "--lifetime", "2s", "--etcd", own_etcd.url],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    token = made.stdout.strip()
    listed = httpx.get(f"{a.url}{P}/tokens", headers=as_(a.token), timeout=5).json()["items"]
    (short,) = [t for t in listed if t["name"] == "short"]
    expires = datetime.fromisoformat(short["expiresAt"].replace("Z", "+00:00"))
    assert containers(a, token).status_code == 200
    assert containers(b, token).status_code == 200
    _, answer = refused_within(b, token, 10.0)
    assert datetime.now(UTC) >= expires
    assert answer.json()["message"] == (
        f"token expired at {short['expiresAt']}: make a new one with `zun-controller token`"
    )
    assert containers(a, token).status_code == 401
    never = subprocess.run(
        [ZUN, "token", "--name", "x", "--role", "admin", "--etcd", own_etcd.url],
        capture_output=True, text=True, timeout=30, check=False,
        env={"ZUN_TOKEN_LIFETIME": "never", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert never.returncode == 2 and "'never' is asked for per token" in never.stderr


def etcd_revision(url: str) -> int:
    async def read() -> int:
        kv = EtcdKV.from_url(url)
        try:
            return await kv.revision()
        finally:
            await kv.close()

    return asyncio.run(read())


def test_zunctl_lists_revokes_and_no_answer_shows_a_secret(
    replicas: tuple[ApiOnly, ApiOnly], own_etcd: EtcdServer
) -> None:
    a, b = replicas
    ci = make(a, "ci-" + "x" * 50, projects=[f"project-{i}" for i in range(12)])
    forever = make(a, "forever", lifetime="never")
    before = etcd_revision(own_etcd.url)
    for _ in range(30):
        assert containers(b, forever).status_code == 200
    time.sleep(0.5)
    assert etcd_revision(own_etcd.url) - before <= 1  # one lastUsedAt write, not 30
    table = zunctl(a.url, a.token, "demo", "token", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), table.stdout
    assert lines[0].split() == ["NAME", "ROLE", "PROJECTS", "EXPIRES", "LAST", "USED", "AGE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["forever"][3] == "never" and rows["forever"][5] == "ago"  # EXPIRES, LAST USED
    ci_row = next(r for name, r in rows.items() if name.startswith("ci-x"))
    assert ci_row[0].endswith("…") and ci_row[3:5] == ["in", "89d"]  # 90 days less a moment
    assert rows["root"][2] == "*"
    as_json = zunctl(a.url, a.token, "demo", "token", "list", "-o", "json")
    as_yaml = zunctl(a.url, a.token, "demo", "token", "list", "-o", "yaml")
    items = json.loads(as_json.stdout)["items"]
    assert yaml.safe_load(as_yaml.stdout)["items"] == items
    assert {t["name"] for t in items} == {"root", "forever", "ci-" + "x" * 50}
    assert next(t for t in items if t["name"] == "forever").get("lastUsedAt")
    for text in (table.stdout, as_json.stdout, as_yaml.stdout):
        for secret in (a.token, b.token, ci, forever):
            assert secret not in text and secret.removeprefix("zun_")[:16] not in text
    assert all(set(t) <= {"name", "role", "projects", "createdAt", "expiresAt", "lastUsedAt"}
               for t in items)  # fmt: skip
    done = zunctl(a.url, a.token, "demo", "token", "revoke", "forever")
    assert done.returncode == 0 and done.stdout.strip() == "token/forever revoked", done.stderr
    refused = zunctl(b.url, forever, "demo", "get", "containers")
    assert refused.returncode == 1 and "revoked" in refused.stderr
    other = zunctl(a.url, ci, "demo", "token", "revoke", "root")
    assert other.returncode == 1 and "may revoke only itself" in other.stderr
    missing = zunctl(a.url, a.token, "demo", "token", "revoke", "nobody")
    assert missing.returncode == 1 and "no token named 'nobody'" in missing.stderr
    made = zunctl(a.url, a.token, "demo", "token", "create", "made", "--role", "reader",
                  "-p", "demo", "--lifetime", "1h")  # fmt: skip
    assert made.returncode == 0 and made.stdout.startswith("zun_"), made.stderr
    assert made.stderr.startswith("expires: 20")
    assert containers(b, made.stdout.strip()).status_code == 200


async def refused_after(tokens: Tokens, token: str, seconds: float) -> float:
    """Seconds until `tokens` refuses `token` as revoked (asked in a bounded loop)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            await tokens.authenticate(f"Bearer {token}")
        except ApiError as exc:
            assert "revoked" in exc.message
            return time.monotonic() - start
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_the_view_lists_again_after_etcd_comes_back(own_etcd: EtcdServer) -> None:
    """A lost watch (etcd restarted): the view stops answering, lists again once etcd is
    back, and a token revoked meanwhile is refused throughout."""
    kv, other = EtcdKV.from_url(own_etcd.url), EtcdKV.from_url(own_etcd.url)
    tokens = Tokens(kv)
    task = asyncio.create_task(tokens.view.run())
    try:
        await asyncio.wait_for(tokens.view.ready.wait(), 10)
        token = await Tokens(other).create("ci", Role.ADMIN, [])
        await tokens.authenticate(f"Bearer {token}")
        await asyncio.to_thread(own_etcd.stop)
        for _ in range(200):
            if not tokens.view.synced:
                break
            await asyncio.sleep(0.05)
        assert not tokens.view.synced, "the view kept answering with etcd gone"
        await asyncio.to_thread(own_etcd.start)
        assert await Tokens(other).revoke("ci") == 1
        took = await refused_after(tokens, token, 1.0)
        assert took <= 1.0, f"accepted for {took:.3f}s after it was revoked"
        await asyncio.wait_for(tokens.view.ready.wait(), 20)
        assert tokens.view.get(digest(token)) is None
        with pytest.raises(ApiError, match="revoked"):
            await tokens.authenticate(f"Bearer {token}")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await kv.close()
        await other.close()
