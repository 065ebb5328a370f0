"""The API fuzzed with hypothesis over the paths of its own OpenAPI document, on real etcd: no
answer is a 5xx, and a rejected request writes nothing (etcd's revision does not move)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.models.registry import parse
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
EXAMPLES = 500

names = st.sampled_from(["web", "db", "demo", "x" * 70, "Bad_Name", "-", "a.b"]) | st.text(
    min_size=1, max_size=12
)
PROJECT_SCOPED = {"containers", "applications", "volumes", "networks", "gitrepositories", "events"}
path_names = st.sampled_from(["demo", "web", "db"]) | names
plurals = st.sampled_from(
    [
        *("containers", "hosts", "projects", "quotas", "applications", "volumes"),
        *("networks", "clusters", "secrets", "gitrepositories", "events"),
    ]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
spec_fields = st.sampled_from(
    ["image", "ports", "resources", "runtime", "env", "state", "replicas", "limits", "endpoint"]
)


KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "containers": ("Container", {"image": "zun-test/httpd:v1"}),
    "hosts": ("Host", {"endpoint": "tcp://127.0.0.1:1"}),
    "projects": ("Project", {}),
    "quotas": ("Quota", {"limits": {"containers": 3}}),
    "applications": (
        "Application",
        {"cluster": "c", "template": {"containers": [{"name": "w", "image": "x"}]}},
    ),
    "volumes": ("Volume", {}),
    "networks": ("Network", {"internal": True}),
    "clusters": ("Cluster", {"type": "swarm", "endpoint": "tcp://127.0.0.1:1"}),
    "secrets": ("Secret", {"data": {"kubeconfig": "x"}}),
    "gitrepositories": ("GitRepository", {"url": "file:///nonexistent", "path": "apps"}),
    "events": (
        "Event",
        {
            "involvedObject": {"kind": "Container", "name": "web", "project": "demo"},
            "reason": "Fuzz",
            "firstTimestamp": "2026-11-24T00:00:00Z",
            "lastTimestamp": "2026-11-24T00:00:00Z",
        },
    ),
}


@st.composite
def records(draw: st.DrawFn, plural: str) -> Any:
    """Mostly near-valid records of the path's kind, with up to two fields garbled."""
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    kind, spec = KINDS[plural]
    rec: dict[str, Any] = {
        "apiVersion": "zun.openstack.org/v1alpha1",
        "kind": kind if draw(st.integers(0, 4)) else draw(st.sampled_from(["Nope", "Host"])),
        "metadata": {"name": draw(st.sampled_from(["web", "db", "demo"]) | names)},
        "spec": dict(spec),
    }
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        where = draw(st.sampled_from(["spec", "metadata", "top"]))
        key = draw(
            spec_fields | st.sampled_from(["labels", "project", "resourceVersion", "apiVersion"])
        )
        target = rec if where == "top" else rec[where]
        target[key] = draw(json_values)
    return rec


KIND_IN_PATH = re.compile(r"^(/apis/[^/]+/[^/]+/(?:projects/\{project\}/)?)(\w+)")


@st.composite
def requests(draw: st.DrawFn, operations: list[tuple[str, str]]) -> dict[str, Any]:
    method, template = draw(st.sampled_from(operations))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    # the document has a path per kind: the body is of its kind, or the path asks another's
    at = KIND_IN_PATH.match(template)
    plural = at.group(2) if at and at.group(2) in KINDS else draw(plurals)
    if at and draw(st.integers(0, 3)) == 0:
        plural, template = draw(plurals), KIND_IN_PATH.sub(r"\1{plural}", template)
    path = re.sub(
        r"\{(\w+)\}",
        lambda m: plural if m.group(1) == "plural" else quote(draw(path_names), safe=""),
        template,
    )
    params: dict[str, Any] = {}
    for key, values in (
        ("labelSelector", st.sampled_from(["a=b", "a in (x", "!!", "tier"]) | st.text(max_size=6)),
        ("limit", st.integers(-5, 20_000).map(str) | st.text(max_size=3)),
        ("continue", st.text(max_size=10)),
        ("resourceVersion", st.integers(-1, 10**6).map(str)),
        ("watch", st.sampled_from(["true", "false", "maybe"])),
    ):
        if draw(st.integers(0, 3)) == 0:
            params[key] = draw(values)
    params["timeoutSeconds"] = "0.05"
    raw = draw(st.integers(0, 9)) == 0
    body = draw(st.binary(max_size=20)) if raw else json.dumps(draw(records(plural))).encode()
    content_types = ["application/json", "application/merge-patch+json", "text/plain"]
    return {
        "method": method,
        "url": path,
        "params": params,
        "content": body,
        "headers": {
            "Content-Type": draw(st.sampled_from(content_types)),
            "Authorization": draw(st.sampled_from(["admin"] * 5 + ["member", "none", "garbage"])),
        },
    }


@dataclass
class Harness:
    kv: EtcdKV
    client: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)
    seen: list[int] = field(default_factory=list)

    @classmethod
    async def start(cls, url: str) -> Harness:
        kv = EtcdKV.from_url(url)
        app = create_app(RecordStore(kv), release=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
        harness = cls(kv, client)
        tokens = Tokens(kv)
        store = RecordStore(kv)
        for plural, (kind, spec) in KINDS.items():
            for name in ("web", "db", "demo"):
                meta = {"name": name, "project": "demo" if plural in PROJECT_SCOPED else None}
                body = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind, "spec": spec}
                await store.create(parse({**body, "metadata": meta}))
        harness.tokens = {
            "admin": "Bearer " + await tokens.create("fuzz-admin", Role.ADMIN, []),
            "member": "Bearer " + await tokens.create("fuzz-member", Role.MEMBER, ["demo"]),
            "none": "",
            "garbage": "Bearer zun_nope",
        }
        return harness

    async def check(self, req: dict[str, Any]) -> None:
        req["headers"]["Authorization"] = self.tokens[req["headers"]["Authorization"]]
        before = await self.kv.revision()
        answer = await self.client.request(**req)
        self.seen.append(answer.status_code)
        assert answer.status_code < 500, (req, answer.text)
        if answer.status_code >= 400:
            assert await self.kv.revision() == before, (req, answer.status_code, answer.text)
            if answer.status_code != 405:
                assert answer.json()["kind"] == "Status", answer.text

    async def close(self) -> None:
        await self.client.aclose()
        await self.kv.close()


@pytest.mark.timeout(600)
def test_fuzzed_requests_never_5xx_and_rejections_write_nothing(own_etcd: EtcdServer) -> None:
    loop = asyncio.new_event_loop()
    harness = loop.run_until_complete(Harness.start(own_etcd.url))
    try:
        schema = loop.run_until_complete(harness.client.get("/openapi.json")).json()
        operations = [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops]
        assert ("PATCH", "/apis/zun.openstack.org/v1alpha1/hosts/{name}") in operations

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(req=requests(operations))
        def one(req: dict[str, Any]) -> None:
            loop.run_until_complete(harness.check(req))

        one()
        assert any(code < 300 for code in harness.seen), "no request was accepted at all"
        assert {200, 401, 403, 404, 422} <= set(harness.seen)
    finally:
        loop.run_until_complete(harness.close())
        loop.close()
