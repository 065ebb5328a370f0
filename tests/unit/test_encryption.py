"""Credentials at rest: Secrets and PullSecrets sealed in the KV, read back through the store.

Tests taking the `kv` fixture run on MemoryKV and on a real etcd (marked e2e)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.errors import DecryptionError
from zun_controller.models.application import Secret, SecretSpec
from zun_controller.models.base import ObjectMeta, Scope
from zun_controller.models.container import Container
from zun_controller.models.pullsecret import PullSecret
from zun_controller.models.registry import kinds, parse
from zun_controller.store.encryption import MAGIC, Sealer, SealingKV, is_sealed_key, key_id_of
from zun_controller.store.keyfile import (
    DataKey,
    KeyFileError,
    KeyRing,
    add_key,
    load_key_file,
)
from zun_controller.store.keys import kind_prefix, record_key
from zun_controller.store.kv import KV, EventType, Txn, TxnResult
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore
from zun_controller.store.rewrap import census, rewrap

PASSWORD = "hunter2-kubeconfig-token"


def ring(*ids: str) -> KeyRing:
    return KeyRing(tuple(DataKey(i, i.encode().ljust(32, b"0")) for i in ids))


def sealed_store(kv: KV, *ids: str) -> RecordStore:
    return RecordStore(SealingKV(kv, Sealer(ring(*ids) if ids else None)))


def secret(name: str = "kube", value: str = PASSWORD) -> Secret:
    return Secret(metadata=ObjectMeta(name=name), spec=SecretSpec(data={"kubeconfig": value}))


def pull_secret(name: str = "regcred", project: str = "demo") -> PullSecret:
    auth = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    config = json.dumps({"auths": {"registry.example:5000": {"auth": auth}}})
    obj = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "PullSecret",
            "metadata": {"name": name, "project": project},
            "spec": {"data": {".dockerconfigjson": config}},
        }
    )
    assert isinstance(obj, PullSecret)
    return obj


async def raw_value(kv: KV, key: str) -> bytes:
    found = await kv.get(key)
    assert found is not None
    return found.value


SECRET_KEY = record_key(Secret.KIND, "kube", None)


async def test_a_secret_is_sealed_in_the_kv_and_read_back_plain(kv: KV) -> None:
    store = sealed_store(kv, "k1")
    made = await store.create(secret())
    stored = await kv.get(SECRET_KEY)
    assert stored is not None
    assert stored.value.startswith(MAGIC + b"k1:")
    assert PASSWORD.encode() not in stored.value and b"kubeconfig" not in stored.value
    assert made.metadata.resource_version == str(stored.mod_revision)
    got = await store.get(Secret, "kube")
    assert got.spec.data == {"kubeconfig": PASSWORD}
    assert got.metadata.resource_version == str(stored.mod_revision)
    listed = await store.list(Secret)
    assert [s.spec.data for s in listed.items] == [{"kubeconfig": PASSWORD}]


async def test_pull_secrets_are_sealed_and_other_kinds_are_not(kv: KV) -> None:
    store = sealed_store(kv, "k1")
    await store.create(pull_secret())
    cont = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Container",
            "metadata": {"name": "web", "project": "demo"},
            "spec": {"image": "busybox"},
        }
    )
    await store.create(cont)
    sealed = await raw_value(kv, record_key(PullSecret.KIND, "regcred", "demo"))
    assert key_id_of(sealed) == "k1" and b"auths" not in sealed
    plain = await raw_value(kv, record_key(Container.KIND, "web", "demo"))
    assert json.loads(plain)["spec"]["image"] == "busybox"
    got = await store.get(PullSecret, "regcred", "demo")
    assert got.spec.credentials() == {"registry.example:5000": ("bob", PASSWORD)}


async def test_a_value_moved_onto_another_record_is_refused(kv: KV) -> None:
    store = sealed_store(kv, "k1")
    await store.create(secret("a"))
    moved = await raw_value(kv, record_key(Secret.KIND, "a", None))
    await kv.commit(Txn(puts=[(record_key(Secret.KIND, "b", None), moved)]))
    with pytest.raises(DecryptionError, match="fails authentication"):
        await store.get(Secret, "b")
    assert (await store.get(Secret, "a")).spec.data == {"kubeconfig": PASSWORD}


async def test_an_altered_value_is_refused() -> None:
    kv = MemoryKV()
    store = sealed_store(kv, "k1")
    await store.create(secret())
    value = bytearray(await raw_value(kv, SECRET_KEY))
    value[-1] ^= 1
    await kv.commit(Txn(puts=[(SECRET_KEY, bytes(value))]))
    with pytest.raises(DecryptionError, match="fails authentication"):
        await store.get(Secret, "kube")


async def test_rotation_new_writes_use_the_first_key_and_old_values_stay_readable(
    kv: KV,
) -> None:
    await sealed_store(kv, "k1").create(secret("old"))
    rotated = sealed_store(kv, "k2", "k1")
    await rotated.create(secret("new"))
    assert key_id_of(await raw_value(kv, record_key(Secret.KIND, "old", None))) == "k1"
    assert key_id_of(await raw_value(kv, record_key(Secret.KIND, "new", None))) == "k2"
    assert {s.name for s in (await rotated.list(Secret)).items} == {"old", "new"}
    old = await rotated.get(Secret, "old")
    old.spec.data["extra"] = "x"
    await rotated.update(old)
    assert key_id_of(await raw_value(kv, record_key(Secret.KIND, "old", None))) == "k2"


async def test_a_key_dropped_from_the_ring_is_named_and_census_refuses_to_start(kv: KV) -> None:
    await sealed_store(kv, "k1").create(secret())
    with pytest.raises(DecryptionError, match=r"key id 'k1'.*does not list.*k2"):
        await sealed_store(kv, "k2").get(Secret, "kube")
    with pytest.raises(DecryptionError, match=r"key id 'k1' \(1 values\)"):
        await census(kv, Sealer(ring("k2")))
    assert await census(kv, Sealer(ring("k2", "k1"))) == {"k1": 1}


async def test_sealed_values_without_a_key_file_are_a_clear_error(kv: KV) -> None:
    await sealed_store(kv, "k1").create(secret())
    with pytest.raises(DecryptionError, match="no key file: pass --encryption-key-file"):
        await sealed_store(kv).get(Secret, "kube")
    with pytest.raises(DecryptionError, match="pass the key file"):
        await census(kv, Sealer(None))


async def test_a_plain_value_from_before_encryption_is_read_and_sealed_on_write(kv: KV) -> None:
    await sealed_store(kv).create(secret())
    assert PASSWORD.encode() in await raw_value(kv, SECRET_KEY)
    store = sealed_store(kv, "k1")
    got = await store.get(Secret, "kube")
    assert got.spec.data == {"kubeconfig": PASSWORD}
    assert await census(kv, Sealer(ring("k1"))) == {"": 1}
    got.metadata.labels["x"] = "y"
    await store.update(got)
    assert key_id_of(await raw_value(kv, SECRET_KEY)) == "k1"


async def test_rewrap_leaves_only_the_newest_key_and_keeps_content_and_semantics(kv: KV) -> None:
    await sealed_store(kv).create(secret("plain"))
    await sealed_store(kv, "k1").create(secret("old"))
    await sealed_store(kv, "k2", "k1").create(secret("new"))
    before = {s.name: s for s in (await sealed_store(kv, "k2", "k1").list(Secret)).items}
    progress: list[int] = []
    summary = await rewrap(
        kv, Sealer(ring("k2", "k1")), page=2, progress=lambda s: progress.append(s.scanned)
    )
    assert summary.as_json() == {
        "keyId": "k2",
        "scanned": 3,
        "rewrapped": 1,
        "sealedPlain": 1,
        "current": 1,
        "conflicts": 0,
        "before": {"(plain)": 1, "k1": 1, "k2": 1},
    }
    assert progress[-1] == 3 and len(progress) >= 2
    assert await census(kv, Sealer(ring("k2"))) == {"k2": 3}
    after = {s.name: s for s in (await sealed_store(kv, "k2").list(Secret)).items}
    for name, old in before.items():
        assert after[name].spec == old.spec and after[name].metadata.uid == old.metadata.uid
        assert after[name].metadata.generation == old.metadata.generation
    assert after["plain"].metadata.resource_version != before["plain"].metadata.resource_version
    assert after["new"].metadata.resource_version == before["new"].metadata.resource_version


class RacingKV(MemoryKV):
    """Writes the key `racing` once, just before the first batch of compare-and-swaps lands."""

    def __init__(self, racing: str) -> None:
        super().__init__()
        self.racing, self.raced = racing, True
        self.store = sealed_store(self, "k1")

    async def commit_many(self, txns: Sequence[Txn]) -> list[TxnResult]:
        if not self.raced:
            self.raced = True
            current = await self.store.get(Secret, self.racing)
            current.spec.data["rotated"] = "yes"
            await self.store.update(current)
        return await super().commit_many(txns)


async def test_rewrap_retries_a_value_written_meanwhile_and_loses_no_write() -> None:
    kv = RacingKV("a")
    await kv.store.create(secret("a"))
    kv.raced = False
    summary = await rewrap(kv, Sealer(ring("k2", "k1")))
    assert summary.rewrapped == 1 and summary.conflicts == 0
    got = await sealed_store(kv, "k2").get(Secret, "a")
    assert got.spec.data["rotated"] == "yes"


async def test_watch_and_informer_style_status_writes_see_plain_values(kv: KV) -> None:
    store = sealed_store(kv, "k1")
    revision = await kv.revision()
    made = await store.create(secret())
    events = store.watch(kind_prefix(Secret.KIND), revision + 1)
    batch = await asyncio.wait_for(anext(events), 5)
    await events.aclose()  # type: ignore[attr-defined]  # an async generator
    assert batch[0].type is EventType.PUT and PASSWORD.encode() in batch[0].value
    stored = await store.kv.get(SECRET_KEY)
    assert stored is not None and stored.value.startswith(b"{")
    made.status.phase = "Ready"
    written = await store.update_status(made, stored=stored.value)
    assert key_id_of(await raw_value(kv, SECRET_KEY)) == "k1"
    assert (await store.get(Secret, "kube")).status.phase == "Ready"
    now = await kv.get(SECRET_KEY)
    assert now is not None and written.metadata.resource_version == str(now.mod_revision)


# -- the key file --------------------------------------------------------------------------------


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    path.chmod(mode)
    return path


def b64(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def test_a_key_file_lists_keys_newest_first(tmp_path: Path) -> None:
    path = key_file(tmp_path, f"keys:\n- id: k2\n  secret: {b64()}\n- id: k1\n  secret: {b64()}\n")
    loaded = load_key_file(path)
    assert loaded.ids == ["k2", "k1"] and loaded.newest.id == "k2"
    assert repr(loaded.newest) == "DataKey(id='k2')"


def test_a_json_key_file_is_read_too(tmp_path: Path) -> None:
    path = key_file(tmp_path, json.dumps({"keys": [{"id": "a.1", "secret": b64()}]}))
    assert load_key_file(path).ids == ["a.1"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_may_read_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, f"keys:\n- id: k1\n  secret: {b64()}\n", mode)
    with pytest.raises(KeyFileError, match=rf"mode 0{mode:o}.*chmod 600 {path}"):
        load_key_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys: []\n", "non-empty list `keys`"),
        ("nope: 1\n", "non-empty list `keys`"),
        ("keys:\n- id: k1\n", r"keys\[0\]: must be an object with exactly `id` and `secret`"),
        (f"keys:\n- id: 'a:b'\n  secret: {b64()}\n", r"keys\[0\]\.id: must be 1-63"),
        ("keys:\n- id: k1\n  secret: c2hvcnQ=\n", r"\(k1\)\.secret: must be base64 of 32"),
        ("keys:\n- id: k1\n  secret: '***'\n", r"\(k1\)\.secret: must be base64 of 32"),
        (f"keys:\n- {{id: k1, secret: {b64()}}}\n- {{id: k1, secret: {b64()}}}\n", "listed twice"),
        ("keys: [\n", "not YAML"),
    ],
)
def test_a_malformed_key_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        load_key_file(key_file(tmp_path, text))


def test_a_missing_key_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist; make one with `zun-controller keygen"):
        load_key_file(tmp_path / "none.yaml")


def test_keygen_makes_a_private_file_and_adds_keys_first_or_last(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keys.yaml"
    add_key(path, "k1")
    assert (path.stat().st_mode & 0o777) == 0o600
    add_key(path, "k0", first=False)
    add_key(path, "k2")
    assert load_key_file(path).ids == ["k2", "k1", "k0"]
    with pytest.raises(KeyFileError, match="exists"):
        add_key(path, "k1")


# -- the API ------------------------------------------------------------------------------------


async def test_the_api_shows_secrets_to_admins_only_and_never_a_ciphertext_error_detail() -> None:
    kv = MemoryKV()
    app = create_app(sealed_store(kv, "k1"), release=False)
    tokens = Tokens(kv)

    async def client(role: Role, projects: list[str]) -> httpx.AsyncClient:
        token = await tokens.create(f"{role}", role, projects)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api",
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip

    url = "/apis/zun.openstack.org/v1alpha1/secrets"
    body = {"kind": "Secret", "metadata": {"name": "kube"}, "spec": {"data": {"k": PASSWORD}}}
    admin, member, reader = (
        await client(Role.ADMIN, []),
        await client(Role.MEMBER, ["a"]),
        await client(Role.READER, ["a"]),
    )
    async with admin, member, reader:
        made = await admin.post(url, json=body)
        assert made.status_code == 201
        assert PASSWORD.encode() not in await raw_value(kv, SECRET_KEY)
        assert (await admin.get(f"{url}/kube")).json()["spec"]["data"] == {"k": PASSWORD}
        for who in (member, reader):
            for path in (f"{url}/kube", url, f"{url}?watch=true&timeoutSeconds=1"):
                answer = await who.get(path)
                assert answer.status_code == 403 and PASSWORD not in answer.text
        moved = await raw_value(kv, SECRET_KEY)
        await kv.commit(Txn(puts=[(record_key(Secret.KIND, "other", None), moved)]))
        broken = await admin.get(f"{url}/other")
        assert broken.status_code == 500
        assert broken.json()["message"] == (
            "a stored credential cannot be decrypted (see the API's log)"
        )


async def test_rewrap_decrypting_writes_every_value_plain_for_a_rollback(kv: KV) -> None:
    await sealed_store(kv).create(secret("plain"))
    await sealed_store(kv, "k1").create(secret("old"))
    summary = await rewrap(kv, Sealer(ring("k1")), decrypt=True)
    assert summary.as_json()["keyId"] == "(plain)"
    assert (summary.rewrapped, summary.current, summary.conflicts) == (1, 1, 0)
    assert await census(kv, Sealer(None)) == {"": 2}
    assert (await sealed_store(kv).get(Secret, "old")).spec.data == {"kubeconfig": PASSWORD}


def test_every_kind_that_holds_credentials_is_sealed() -> None:
    """A kind named like a secret is one: a new credential kind must join SEALED_PREFIXES."""
    for cls in kinds():
        key = record_key(cls.KIND, "x", "p" if cls.KIND.scope is Scope.PROJECT else None)
        assert is_sealed_key(key) == cls.KIND.kind.endswith("Secret"), cls.KIND.kind
