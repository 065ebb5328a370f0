"""Images from registries: references, pull policies, PullSecrets, and the Container reconciler
pulling on FakeRuntime with FakeRegistry (the real registry and engine: tests/e2e)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.drivers.orchestrators.kubernetes_objects import deployment
from zun_controller.drivers.orchestrators.kubernetes_pull import pull_secret, with_pull_secret
from zun_controller.drivers.orchestrators.swarm import _auth_headers
from zun_controller.drivers.runtime.base import RegistryAuth
from zun_controller.drivers.runtime.fake import FakeRuntime, FakeRuntimeFactory
from zun_controller.drivers.runtime.fake_images import FakeRegistry
from zun_controller.engine.manager import Manager
from zun_controller.errors import InvalidError
from zun_controller.metrics import Metrics
from zun_controller.models.application import AppTemplate
from zun_controller.models.container import Container
from zun_controller.models.event import Event
from zun_controller.models.image import ImagePullPolicy, effective_policy, parse_reference
from zun_controller.models.pullsecret import PullSecret
from zun_controller.models.registry import parse
from zun_controller.reconcilers.app_docker_plan import Replica, hold_until_pulled, plan
from zun_controller.reconcilers.container_config import config_hash, is_current
from zun_controller.reconcilers.legacy_hash import legacy_config_hash, legacy_revision
from zun_controller.reconcilers.setup import RuntimeControllers
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

REG = "registry.test:5000"
PUBLIC = f"{REG}/team/httpd:v1"
PRIVATE = "private.test/team/app:v3"
PASSWORD = "s3cret-Pa55"


def docker_config(host: str, user: str, password: str) -> str:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {f"https://{host}": {"auth": auth}}})


def record(kind: str, name: str, spec: dict[str, Any], project: str | None = "demo") -> Any:
    meta: dict[str, Any] = {"name": name, **({"project": project} if project else {})}
    return parse({"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind, "metadata": meta,
                  "spec": spec})  # fmt: skip


# ---------------------------------------------------------------------------- the model


@pytest.mark.parametrize(
    "image", ["UPPER/x:1", "nginx:", "a//b", "x@sha256:12", "http://x/y", "x:y:z", " x"]
)
def test_a_malformed_reference_is_an_error_naming_spec_image(image: str) -> None:
    with pytest.raises(InvalidError) as caught:
        record("Container", "c", {"image": image})
    assert [e.path for e in caught.value.errors] == ["spec.image"]
    assert "not an image reference" in str(caught.value)


def test_references_parse_as_docker_does() -> None:
    digest = "sha256:" + "a" * 64
    ref = parse_reference(f"127.0.0.1:5000/a/b:v1@{digest}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000", "127.0.0.1:5000/a/b", "v1", digest,
    )  # fmt: skip
    assert parse_reference("zun-test/httpd:v1").registry == "docker.io"
    assert parse_reference("localhost/x").registry == "localhost"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", ImagePullPolicy.ALWAYS),
        ("nginx:latest", ImagePullPolicy.ALWAYS),
        ("nginx:1.27", ImagePullPolicy.IF_NOT_PRESENT),
        ("nginx@sha256:" + "0" * 64, ImagePullPolicy.IF_NOT_PRESENT),
    ],
)
def test_the_default_policy_is_kubernetes(image: str, policy: ImagePullPolicy) -> None:
    assert effective_policy(image, None) is policy
    assert effective_policy(image, ImagePullPolicy.NEVER) is ImagePullPolicy.NEVER


def test_the_default_is_computed_not_stored() -> None:
    obj = record("Container", "c", {"image": "nginx"})
    assert "imagePullPolicy" not in obj.to_wire()["spec"]
    assert "imagePullSecrets" not in obj.to_wire()["spec"]


def test_existing_specs_keep_their_config_hash_and_revision() -> None:
    """Figures computed by the code before imagePullPolicy and imagePullSecrets existed."""
    template = AppTemplate.model_validate(
        {"containers": [{"name": "web", "image": "zun-test/httpd:v1",
                         "ports": [{"containerPort": 8080}]}]}
    )  # fmt: skip
    # the code before the hash rule gave these figures; the rule accepts them (legacy_hash)
    assert legacy_revision(template) == "2d70bbc3f0"
    obj = Container.model_validate(
        {"metadata": {"name": "a", "project": "p", "uid": "u1"},
         "spec": {"image": "zun-test/httpd:v1", "env": [{"name": "A", "value": "b"}]}}
    )  # fmt: skip
    assert legacy_config_hash(obj) == "d0af63b22ecb58a3"
    assert is_current("d0af63b22ecb58a3", obj)
    new = config_hash(obj)
    obj.spec.image_pull_policy = ImagePullPolicy.ALWAYS  # not a reason to recreate
    assert is_current("d0af63b22ecb58a3", obj) and config_hash(obj) == new


def test_a_pull_secret_holds_a_docker_config() -> None:
    ok = record("PullSecret", "reg", {"data": {".dockerconfigjson": docker_config(REG, "u", "p")}})
    assert ok.spec.credentials() == {REG: ("u", "p")}
    hub = json.dumps({"auths": {"https://index.docker.io/v1/": {"username": "u", "password": "p"}}})
    assert record("PullSecret", "h", {"data": {".dockerconfigjson": hub}}).spec.credentials() == {
        "docker.io": ("u", "p")
    }
    for bad in ({}, {".dockerconfigjson": "{"}, {".dockerconfigjson": '{"auths": {"x": 1}}'}):
        with pytest.raises(InvalidError) as caught:
            record("PullSecret", "reg", {"data": bad})
        assert caught.value.errors[0].path == "spec.data"
    with pytest.raises(InvalidError) as caught:  # no data: stored, it could not be read back
        record("PullSecret", "reg", {})
    assert caught.value.errors[0].path == "spec.data"
    with pytest.raises(InvalidError) as caught:
        record("PullSecret", "reg", ok.spec.model_dump(), project=None)
    assert caught.value.errors[0].path == "metadata.project"


# ---------------------------------------------------------------------------- reconciling


class Bed:
    def __init__(self) -> None:
        self.public = FakeRegistry(REG)
        self.private = FakeRegistry("private.test", users={"alice": PASSWORD})
        self.store = RecordStore(MemoryKV())
        self.factory = FakeRuntimeFactory(registries=(self.public, self.private))
        self.manager = Manager(metrics=Metrics(), health_port=None)
        self.ctl = RuntimeControllers(
            self.manager, self.store, self.manager.metrics, self.factory, stop_grace=0,
            probe_every=0.2, pull={"backoff": 0.3, "backoff_max": 1.0},
        )  # fmt: skip

    def engine(self) -> FakeRuntime:
        return self.factory.runtimes["tcp://a:2375"]

    async def apply(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        await self.store.create(record(kind, name, spec, None if kind == "Host" else "demo"))

    def container(self, name: str) -> Container:
        obj = self.ctl.containers.get_by_name(name, "demo")
        assert obj is not None
        return obj

    async def until(self, check: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - the reconcilers have no hook to await
                await asyncio.sleep(0.01)

    async def reason(self, name: str, *reasons: str, within: float = 5.0) -> Container:
        def reached() -> bool:
            obj = self.ctl.containers.get_by_name(name, "demo")
            cond = obj.status.condition("Ready") if obj else None
            return cond is not None and cond.reason in reasons

        await self.until(reached, within)
        return self.container(name)

    async def running(self, name: str, within: float = 5.0) -> Container:
        await self.until(lambda: self.container_phase(name) == "Running", within)
        return self.container(name)

    def container_phase(self, name: str) -> str | None:
        obj = self.ctl.containers.get_by_name(name, "demo")
        return obj.status.phase if obj else None

    async def edit(self, name: str, **spec: Any) -> None:
        obj = await self.store.get(Container, name, "demo")
        obj.spec = type(obj.spec).model_validate({**obj.spec.model_dump(), **spec})
        await self.store.update(obj)

    async def events(self) -> list[Event]:
        await asyncio.sleep(0.3)  # the recorder writes in the background
        return (await self.store.list(Event, project="demo")).items


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    bed = Bed()
    stop = asyncio.Event()
    task = asyncio.create_task(bed.manager.run(stop))
    await bed.apply("Host", "a", {"endpoint": "tcp://a:2375"})
    await bed.until(lambda: (h := bed.ctl.hosts.get_by_name("a")) is not None
                    and h.status.is_true("Ready"))  # fmt: skip
    yield bed
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_an_absent_image_is_pulled_and_runs_by_digest(bed: Bed) -> None:
    digest = bed.public.publish(PUBLIC, output=b"hello\n")
    await bed.apply("Container", "web", {"image": PUBLIC})
    obj = await bed.running("web")
    assert obj.status.image_id == f"{REG}/team/httpd@{digest}"
    assert bed.public.pulls == [PUBLIC]
    reasons = [e.spec.reason for e in await bed.events()]
    assert {"Pulling", "Pulled"} <= set(reasons)
    pulled = next(e for e in await bed.events() if e.spec.reason == "Pulled")
    assert "MB" in pulled.spec.message and "s (" in pulled.spec.message


async def test_if_not_present_does_not_pull_a_present_image(bed: Bed) -> None:
    bed.public.publish(PUBLIC)
    bed.engine().add_image(PUBLIC)
    await bed.apply("Container", "web", {"image": PUBLIC})
    await bed.running("web")
    assert bed.public.pulls == []


async def test_wrong_credentials_back_off_then_a_fixed_secret_runs(bed: Bed) -> None:
    bed.private.publish(PRIVATE)
    config = docker_config("private.test", "alice", "wrong-password")
    await bed.apply("PullSecret", "reg", {"data": {".dockerconfigjson": config}})
    await bed.apply("Container", "app", {"image": PRIVATE, "imagePullSecrets": [{"name": "reg"}]})
    obj = await bed.reason("app", "ErrImagePull")
    cond = obj.status.condition("Ready")
    assert cond is not None and "unauthorized" in cond.message
    assert obj.status.phase == "Error"
    obj = await bed.reason("app", "ImagePullBackOff")
    cond = obj.status.condition("Ready")
    assert cond is not None and "next retry at" in cond.message
    assert await bed.engine().list_containers({}) == []  # nothing created, nothing looping
    errors = bed.manager.metrics.registry.get_sample_value(
        "controller_runtime_reconcile_errors_total", {"controller": "container"}
    )
    assert errors == 0
    secret = await bed.store.get(PullSecret, "reg", "demo")
    secret.spec.data[".dockerconfigjson"] = docker_config("private.test", "alice", PASSWORD)
    await bed.store.update(secret)
    await bed.running("app")
    dumped = json.dumps([e.to_wire() for e in await bed.events()]) + json.dumps(obj.to_wire())
    assert PASSWORD not in dumped and "wrong-password" not in dumped


async def test_a_missing_pull_secret_says_so(bed: Bed) -> None:
    await bed.apply("Container", "app", {"image": PRIVATE, "imagePullSecrets": [{"name": "no"}]})
    obj = await bed.reason("app", "PullSecretNotFound")
    cond = obj.status.condition("Ready")
    assert cond is not None and cond.message.startswith("spec.imagePullSecrets[0]: ")


async def test_never_with_the_image_absent_says_so(bed: Bed) -> None:
    bed.public.publish(PUBLIC)
    await bed.apply("Container", "web", {"image": PUBLIC, "imagePullPolicy": "Never"})
    obj = await bed.reason("web", "ErrImageNeverPull")
    cond = obj.status.condition("Ready")
    assert cond is not None and "imagePullPolicy is Never" in cond.message
    assert bed.public.pulls == []
    bed.engine().add_image(PUBLIC)
    await bed.edit("web", labels={"nudge": "1"})  # Never looks again only every 30 s
    await bed.running("web")


async def test_always_pulls_a_moved_tag_again_on_rebuild(bed: Bed) -> None:
    first = bed.public.publish(f"{REG}/team/httpd:moving", output=b"v1\n")
    image = f"{REG}/team/httpd:moving"
    await bed.apply("Container", "web", {"image": image, "imagePullPolicy": "Always"})
    obj = await bed.running("web")
    assert obj.status.image_id is not None and obj.status.image_id.endswith(first)
    second = bed.public.publish(image, output=b"v2\n")
    await bed.edit("web", rebuilt_at=datetime.now(UTC))
    await bed.until(lambda: (bed.container("web").status.image_id or "").endswith(second))
    assert bed.public.pulls == [image, image]


async def test_a_digest_reference_runs_that_digest(bed: Bed) -> None:
    first = bed.public.publish(PUBLIC)
    bed.public.publish(PUBLIC)  # the tag moves on; the digest still names the first
    await bed.apply("Container", "web", {"image": f"{PUBLIC}@{first}"})
    obj = await bed.running("web")
    assert obj.status.image_id == f"{REG}/team/httpd@{first}"


async def test_concurrent_creates_of_one_image_make_one_pull(bed: Bed) -> None:
    bed.public.publish(PUBLIC)
    gate = bed.public.hold()
    for i in range(20):
        await bed.apply("Container", f"web-{i}", {"image": PUBLIC})
    await bed.until(lambda: all(bed.container_phase(f"web-{i}") for i in range(20)))
    await asyncio.sleep(0.2)  # every worker reaches the pull in flight
    gate.set()
    for i in range(20):
        await bed.running(f"web-{i}")
    assert bed.public.pulls == [PUBLIC]


async def test_a_failed_replacement_pull_keeps_the_old_container(bed: Bed) -> None:
    bed.public.publish(PUBLIC)
    await bed.apply("Container", "web", {"image": PUBLIC})
    old = (await bed.running("web")).status.container_id
    await bed.edit("web", image=f"{REG}/team/httpd:v9")  # not in the registry
    obj = await bed.reason("web", "ErrImagePull", "ImagePullBackOff")
    assert obj.status.phase == "Running" and obj.status.container_id == old
    [state] = await bed.engine().list_containers({})
    assert state.id == old


# ---------------------------------------------------------------------------- the API


async def test_members_write_pull_secrets_of_their_project_and_readers_cannot_read_them() -> None:
    kv = MemoryKV()
    app = create_app(RecordStore(kv), release=False)
    tokens = Tokens(kv)

    async def client(role: Role, project: str) -> httpx.AsyncClient:
        token = await tokens.create(f"{role}-{project}", role, [project])
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api",
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip

    base = "/apis/zun.openstack.org/v1alpha1/projects"
    body = {"kind": "PullSecret", "metadata": {"name": "reg"},
            "spec": {"data": {".dockerconfigjson": docker_config(REG, "u", PASSWORD)}}}  # fmt: skip
    async with await client(Role.MEMBER, "a") as member, await client(Role.READER, "a") as reader:
        assert (await member.post(f"{base}/a/pullsecrets", json=body)).status_code == 201
        assert (await member.post(f"{base}/b/pullsecrets", json=body)).status_code == 403
        assert (await member.get(f"{base}/a/pullsecrets/reg")).status_code == 200
        assert (await reader.get(f"{base}/a/pullsecrets/reg")).status_code == 403
        listed = await reader.get("/apis/zun.openstack.org/v1alpha1/pullsecrets")
        assert PASSWORD not in listed.text
        before = await kv.revision()
        bad = {"kind": "Container", "metadata": {"name": "c"}, "spec": {"image": "Bad/Image"}}
        r = await member.post(f"{base}/a/containers", json=bad)
        assert r.status_code == 422
        assert r.json()["details"]["causes"][0]["field"] == "spec.image"
        assert await kv.revision() == before


# ---------------------------------------------------------------------------- docker Clusters


def test_no_ready_old_replica_is_drained_before_a_new_image_was_pulled() -> None:
    old = [Replica("web-a-0", 0, True), Replica("web-a-1", 1, True), Replica("web-a-2", 2, True)]
    step = plan(3, 1, 1, [], old)  # default-like strategy: one surge, one unavailable
    assert step.create and step.drain == ("web-a-2",)
    held = hold_until_pulled(step, [], old, pulled=False)
    assert held.create == step.create and held.drain == ()
    broken = [*old[:2], Replica("web-a-2", 2, False)]  # a not-ready one serves nobody: it goes
    assert hold_until_pulled(plan(3, 1, 1, [], broken), [], broken, pulled=False).drain == (
        "web-a-2",
    )
    assert hold_until_pulled(step, [], old, pulled=True) == step
    no_surge = plan(3, 0, 1, [], old)  # nothing new can be made before an old one goes
    assert hold_until_pulled(no_surge, [], old, pulled=False) == no_surge


# ---------------------------------------------------------------------------- Kubernetes


def test_the_kubernetes_pull_secret_is_a_docker_config_of_the_app() -> None:
    app = record("Application", "web", {
        "cluster": "k", "template": {"containers": [{"name": "c", "image": PRIVATE}]},
    })  # fmt: skip
    manifest = pull_secret(app, RegistryAuth("private.test", "alice", PASSWORD))
    assert manifest["type"] == "kubernetes.io/dockerconfigjson"
    assert manifest["metadata"]["name"] == "web-pull"
    assert manifest["metadata"]["namespace"] == "zun-demo"
    config = json.loads(base64.b64decode(manifest["data"][".dockerconfigjson"]))
    entry = config["auths"]["private.test"]
    assert (entry["username"], entry["password"]) == ("alice", PASSWORD)
    assert base64.b64decode(entry["auth"]).decode() == f"alice:{PASSWORD}"
    assert (
        "imagePullSecrets"
        not in deployment(app, app.spec.template, "r1")["spec"]["template"]["spec"]
    )
    pulled = with_pull_secret(deployment(app, app.spec.template, "r1"), app)
    assert pulled["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "web-pull"}]


def test_swarm_sends_the_credentials_as_docker_registry_auth() -> None:
    headers = _auth_headers(RegistryAuth("private.test", "alice", PASSWORD))
    padded = headers["X-Registry-Auth"] + "=" * (-len(headers["X-Registry-Auth"]) % 4)
    sent = json.loads(base64.urlsafe_b64decode(padded))
    assert sent == {"username": "alice", "password": PASSWORD, "serveraddress": "private.test"}
    assert _auth_headers(None) == {}


async def test_stopping_the_manager_cancels_a_pull_in_flight() -> None:
    bed = Bed()
    bed.public.publish(PUBLIC)
    gate = bed.public.hold()
    stop = asyncio.Event()
    task = asyncio.create_task(bed.manager.run(stop))
    await bed.apply("Host", "a", {"endpoint": "tcp://a:2375"})
    await bed.apply("Container", "web", {"image": PUBLIC})
    await bed.reason("web", "Pulling")
    puller = bed.ctl.container.reconciler.puller  # type: ignore[attr-defined]
    [flight] = puller._flights.values()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert flight.task.cancelled() and not gate.is_set()
    assert bed.public.pulls == []
