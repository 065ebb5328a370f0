"""Token lifetimes, revocation, the watch-fed view and the bounded usage writes, on the
in-memory store."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import TOKENS, Role, Tokens, digest
from zun_controller.api.errors import ApiError
from zun_controller.api.token_record import DEFAULT_LIFETIME, default_lifetime, lifetime
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.kv import KV, Txn
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

P = "/apis/zun.openstack.org/v1alpha1"
T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kv() -> MemoryKV:
    return MemoryKV()


@pytest.fixture
async def tokens(kv: MemoryKV, clock: Clock) -> AsyncIterator[Tokens]:
    """Tokens with their view and usage writer running, as an API process has them."""
    made = Tokens(kv, now=clock)
    tasks = [asyncio.create_task(made.view.run()), asyncio.create_task(made.usage.run())]
    await asyncio.wait_for(made.view.ready.wait(), 5)
    yield made
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def client(app: object, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://api",
        headers={"Authorization": f"Bearer {token}"},
    )


async def stored(kv: MemoryKV) -> list[dict[str, object]]:
    return [json.loads(item.value) for item in (await kv.range(TOKENS)).kvs]


def test_lifetimes_are_read_as_written_and_never_only_per_token() -> None:
    assert lifetime("90d") == timedelta(days=90)
    assert lifetime("1h30m") == timedelta(hours=1, minutes=30)
    assert lifetime(" 2S ") == timedelta(seconds=2)
    assert lifetime("never") is None
    for bad in ("", "0s", "5", "1w", "-1d", "1h 30m", "99999999999999999999d", "3651d"):
        with pytest.raises(ValueError, match=r"lifetime|never"):
            lifetime(bad)
    assert default_lifetime({}) == DEFAULT_LIFETIME
    assert default_lifetime({"ZUN_TOKEN_LIFETIME": "12h"}) == timedelta(hours=12)
    with pytest.raises(ValueError, match="ZUN_TOKEN_LIFETIME: 'never' is asked for per token"):
        default_lifetime({"ZUN_TOKEN_LIFETIME": "never"})


async def test_a_token_expires_at_its_lifetime_and_says_what_to_do(
    tokens: Tokens, kv: MemoryKV, clock: Clock
) -> None:
    token = await tokens.create("ci", Role.MEMBER, ["demo"], lifetime=timedelta(seconds=2))
    (record,) = await stored(kv)
    assert record["expiresAt"] == "2026-12-01T12:00:02Z"
    assert record["createdAt"] == "2026-12-01T12:00:00Z"
    who = await tokens.authenticate(f"Bearer {token}")
    assert (who.name, who.role, who.projects) == ("ci", Role.MEMBER, frozenset({"demo"}))
    clock.at = T0 + timedelta(seconds=2)
    with pytest.raises(ApiError) as refused:
        await tokens.authenticate(f"Bearer {token}")
    assert refused.value.code == 401
    assert refused.value.message == (
        "token expired at 2026-12-01T12:00:02Z: make a new one with `zun-controller token`"
    )


async def test_default_lifetime_and_never(tokens: Tokens, kv: MemoryKV) -> None:
    await tokens.create("a", Role.ADMIN, [])
    await tokens.create("b", Role.ADMIN, [], lifetime=None)
    by_name = {r["name"]: r for r in await stored(kv)}
    assert by_name["a"]["expiresAt"] == "2027-03-01T12:00:00Z"  # 90 days
    assert "expiresAt" not in by_name["b"]


async def test_records_of_the_previous_release_stay_valid_and_new_ones_stay_readable_by_it(
    tokens: Tokens, kv: MemoryKV, clock: Clock
) -> None:
    old = "zun_" + "x" * 43
    legacy = {"name": "old", "role": "member", "projects": ["demo"]}
    await kv.commit(Txn(puts=[(TOKENS + digest(old), json.dumps(legacy).encode())]))
    clock.at = T0 + timedelta(days=10_000)
    assert (await tokens.authenticate(f"Bearer {old}")).name == "old"
    await tokens.create("new", Role.READER, ["demo"])
    for data in await stored(kv):
        # what the previous release reads of a record: nothing else is required
        assert isinstance(data["name"], str) and isinstance(data["projects"], list)
        assert Role(str(data["role"]))
        assert set(data) <= {"name", "role", "projects", "createdAt", "expiresAt", "lastUsedAt"}


async def test_revoked_token_is_refused_as_soon_as_the_view_sees_it(
    tokens: Tokens, kv: MemoryKV
) -> None:
    token = await tokens.create("ci", Role.ADMIN, [])
    other = Tokens(kv)  # another replica's, without a view: reads etcd
    await tokens.authenticate(f"Bearer {token}")
    assert await other.revoke("ci") == 1
    await asyncio.sleep(0)  # the watch delivers the deletion
    assert tokens.view.get(digest(token)) is None
    with pytest.raises(ApiError, match="unknown or revoked token"):
        await tokens.authenticate(f"Bearer {token}")


async def test_a_lost_watch_reads_etcd_until_the_view_has_listed_again(
    tokens: Tokens, kv: MemoryKV
) -> None:
    token = await tokens.create("ci", Role.ADMIN, [])
    await asyncio.sleep(0)
    assert tokens.view.get(digest(token)) is not None
    kv.drop_watches()
    for _ in range(100):
        if not tokens.view.synced:
            break
        await asyncio.sleep(0)
    assert not tokens.view.synced
    await kv.delete_prefix(TOKENS)  # revoked while the view was not following
    with pytest.raises(ApiError, match="unknown or revoked"):
        await tokens.authenticate(f"Bearer {token}")
    await asyncio.wait_for(tokens.view.ready.wait(), 5)
    assert tokens.view.get(digest(token)) is None


async def test_a_token_made_elsewhere_works_before_the_view_has_it(kv: MemoryKV) -> None:
    mine = Tokens(kv)
    task = asyncio.create_task(mine.view.run())
    await asyncio.wait_for(mine.view.ready.wait(), 5)
    token = await Tokens(kv).create("fresh", Role.ADMIN, [])
    assert mine.view.get(digest(token)) is None  # not delivered yet
    assert (await mine.authenticate(f"Bearer {token}")).name == "fresh"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_last_use_is_written_at_most_once_a_minute(
    tokens: Tokens, kv: MemoryKV, clock: Clock
) -> None:
    token = await tokens.create("ci", Role.ADMIN, [])
    await asyncio.sleep(0)
    before = await kv.revision()
    for second in range(0, 150):
        clock.at = T0 + timedelta(seconds=second)
        await tokens.authenticate(f"Bearer {token}")
        await asyncio.sleep(0)
    await tokens.usage.flush()
    (record,) = await stored(kv)
    writes = await kv.revision() - before
    assert writes == 3  # at 0 s, 60 s and 120 s
    assert record["lastUsedAt"] == "2026-12-01T12:02:00Z"


async def test_a_usage_write_never_brings_a_revoked_token_back(kv: MemoryKV, clock: Clock) -> None:
    tokens = Tokens(kv, now=clock)
    token = await tokens.create("ci", Role.ADMIN, [])
    await tokens.authenticate(f"Bearer {token}")  # queues a usage write
    await tokens.revoke("ci")
    await tokens.usage.flush()
    assert await stored(kv) == []


@pytest.fixture
async def app(kv: MemoryKV, clock: Clock) -> AsyncIterator[tuple[object, Tokens]]:
    made = create_app(RecordStore(kv), release=False, token_lifetime=timedelta(hours=1))
    ctx_tokens: Tokens = made.state.zun.tokens
    ctx_tokens.now = clock
    yield made, ctx_tokens


async def test_api_creates_with_a_lifetime_lists_without_secrets_and_revokes(
    app: tuple[object, Tokens], kv: MemoryKV
) -> None:
    asgi, tokens = app
    admin = client(asgi, await tokens.create("root", Role.ADMIN, []))
    r = await admin.post(f"{P}/tokens", json={"name": "ci", "role": "member", "projects": ["d"]})
    assert r.status_code == 201, r.text
    assert r.json()["expiresAt"] == "2026-12-01T13:00:00Z"  # the server's default, 1 h
    ci = r.json()["token"]
    body = {"name": "forever", "role": "admin", "lifetime": "never"}
    r = await admin.post(f"{P}/tokens", json=body)
    assert r.status_code == 201 and "expiresAt" not in r.json()
    r = await admin.post(f"{P}/tokens", json={**body, "lifetime": "soon"})
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "lifetime"
    listed = await admin.get(f"{P}/tokens")
    assert [t["name"] for t in listed.json()["items"]] == ["ci", "forever", "root"]
    text = listed.text
    assert ci not in text and digest(ci) not in text and "token" not in text.replace("tokens", "")
    assert (await client(asgi, ci).get(f"{P}/projects/d/containers")).status_code == 200
    r = await admin.delete(f"{P}/tokens/ci")
    assert r.status_code == 200 and r.json() == {"name": "ci", "revoked": 1}
    r = await client(asgi, ci).get(f"{P}/projects/d/containers")
    assert r.status_code == 401 and "revoked" in r.json()["message"]
    assert (await admin.delete(f"{P}/tokens/ci")).status_code == 404


async def test_others_revoke_only_the_token_they_call_with(
    app: tuple[object, Tokens], kv: MemoryKV
) -> None:
    asgi, tokens = app
    root = await tokens.create("root", Role.ADMIN, [])
    first = await tokens.create("ci", Role.MEMBER, ["d"])
    second = await tokens.create("ci", Role.MEMBER, ["d"])
    member = client(asgi, first)
    r = await member.delete(f"{P}/tokens/root")
    assert r.status_code == 403 and "may revoke only itself" in r.json()["message"]
    assert (await member.delete(f"{P}/tokens/nobody")).status_code == 403
    assert (await member.get(f"{P}/tokens")).status_code == 403
    r = await member.delete(f"{P}/tokens/ci")
    assert r.status_code == 200 and r.json()["revoked"] == 1
    assert (await member.get(f"{P}/projects/d/containers")).status_code == 401
    assert (await client(asgi, second).get(f"{P}/projects/d/containers")).status_code == 200
    assert (await client(asgi, root).get(f"{P}/tokens")).status_code == 200


async def revoke_many(kv: KV) -> None:
    tokens = Tokens(kv)
    made = [await tokens.create("root", Role.ADMIN, []) for _ in range(230)]
    keep = await tokens.create("other", Role.ADMIN, [])
    assert await tokens.revoke("root") == 230
    assert [json.loads(i.value)["name"] for i in (await kv.range(TOKENS)).kvs] == ["other"]
    with pytest.raises(ApiError):
        await tokens.authenticate(f"Bearer {made[117]}")
    assert (await tokens.authenticate(f"Bearer {keep}")).name == "other"


async def test_revoking_a_name_many_tokens_share_takes_them_all(kv: MemoryKV) -> None:
    await revoke_many(kv)


@pytest.mark.e2e
async def test_revoking_many_stays_within_etcds_operations_per_transaction(
    etcd_kv: EtcdKV,
) -> None:
    await revoke_many(etcd_kv)


async def test_only_an_admin_token_that_has_not_expired_counts_as_one(
    kv: MemoryKV, clock: Clock
) -> None:
    tokens = Tokens(kv, now=clock)
    assert not await tokens.any_admin()
    await tokens.create("admin", Role.ADMIN, [], lifetime=timedelta(hours=1))
    await tokens.create("ci", Role.MEMBER, ["demo"], lifetime=None)
    assert await tokens.any_admin()
    clock.at = T0 + timedelta(hours=1)
    assert not await tokens.any_admin()  # `up` makes a new one on its next start


async def test_a_field_of_a_newer_release_does_not_lock_anyone_out(
    kv: MemoryKV, clock: Clock
) -> None:
    tokens = Tokens(kv, now=clock)
    token = "zun_" + "n" * 43
    newer = {"name": "n", "role": "admin", "projects": [], "boundTo": "10.0.0.0/8"}
    await kv.commit(Txn(puts=[(TOKENS + digest(token), json.dumps(newer).encode())]))
    assert (await tokens.authenticate(f"Bearer {token}")).name == "n"
    await tokens.usage.flush()
    (record,) = await stored(kv)
    assert record["boundTo"] == "10.0.0.0/8" and record["lastUsedAt"] == "2026-12-01T12:00:00Z"
