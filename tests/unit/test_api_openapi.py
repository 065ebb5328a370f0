"""The served OpenAPI document says what the API takes and answers: a path per kind, the
records' models as bodies, Status errors, the bearer scheme; and the routing it describes
(405 with Allow, a cluster-scoped record's /status) is the routing the app has."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs  # schemathesis' validator (test extras)
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.api.examples import example
from zun_controller.models.base import DNS_LABEL_SCHEMA, ObjectMeta, Resource, Scope
from zun_controller.models.registry import kinds, parse
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

P = "/apis/zun.openstack.org/v1alpha1"
STATUS = {"$ref": "#/components/schemas/Status"}
NAMED = {"get", "put", "patch", "delete"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    kv = MemoryKV()
    app = create_app(RecordStore(kv), release=False)
    token = await Tokens(kv).create("admin", Role.ADMIN, [])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://api",
        headers={"Authorization": f"Bearer {token}"},
    ) as c:
        yield c


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/openapi.json", headers={"Authorization": ""})
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def record_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if path.startswith(P) and "/tokens" not in path and not path.endswith(("/log", "/exec"))
    ]


def base_of(plural: str, scope: Scope) -> str:
    return f"{P}/projects/{{project}}/{plural}" if scope is Scope.PROJECT else f"{P}/{plural}"


async def test_every_kind_has_its_own_paths_and_no_free_plural(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    assert not [p for p in paths if "{plural}" in p]
    for cls in kinds():
        base = base_of(cls.KIND.plural, cls.KIND.scope)
        assert set(paths[base]) == {"get", "post"}, base
        assert set(paths[base + "/{name}"]) == NAMED
        assert set(paths[base + "/{name}/status"]) == {"get"}
        if cls.KIND.scope is Scope.PROJECT:
            assert set(paths[f"{P}/{cls.KIND.plural}"]) == {"get"}  # across projects
            params = {p["name"] for p in paths[base]["get"]["parameters"]}
            assert {"project", "labelSelector", "watch"} <= params


async def test_bodies_and_answers_are_the_kinds_models(doc: dict[str, Any]) -> None:
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    for cls in kinds():
        kind, base = cls.KIND.kind, base_of(cls.KIND.plural, cls.KIND.scope)
        model = {"$ref": f"#/components/schemas/{kind}"}
        create = paths[base]["post"]
        assert create["requestBody"]["content"]["application/json"]["schema"] == model
        assert create["requestBody"]["content"]["application/json"]["example"]["kind"] == kind
        assert create["responses"]["201"]["content"]["application/json"]["schema"] == model
        replace = paths[base + "/{name}"]["put"]
        assert replace["requestBody"]["content"]["application/json"]["schema"] == model
        patch = paths[base + "/{name}"]["patch"]["requestBody"]["content"]
        assert list(patch) == ["application/merge-patch+json"]
        listed = paths[base]["get"]["responses"]["200"]["content"]
        assert listed["application/json"]["schema"] == {"$ref": f"#/components/schemas/{kind}List"}
        assert "application/x-ndjson" in listed
        wanted = set(cls.model_json_schema(by_alias=True)["properties"])
        assert set(schemas[kind]["properties"]) == wanted
        assert schemas[kind]["properties"]["kind"]["const"] == kind


@pytest.mark.parametrize("cls", kinds(), ids=lambda c: c.KIND.kind)
def test_each_create_example_is_a_record_the_models_take(cls: type[Resource]) -> None:
    data = example(cls.KIND.kind)
    if cls.KIND.scope is Scope.PROJECT:
        data["metadata"] = {**data["metadata"], "project": "demo"}
    assert isinstance(parse(data), cls)


async def test_creates_link_to_the_records_operations(doc: dict[str, Any]) -> None:
    ids = {op["operationId"] for _, _, op in record_operations(doc)}
    container = doc["paths"][f"{P}/projects/{{project}}/containers"]["post"]
    links = container["responses"]["201"]["links"]
    assert set(links) == {f"{op}Container" for op in ("read", "replace", "patch", "delete")} | {
        "readContainerStatus"
    }
    assert all(link["operationId"] in ids for link in links.values())
    assert links["readContainer"]["parameters"]["project"] == "$request.path.project"
    project = doc["paths"][f"{P}/projects"]["post"]["responses"]["201"]["links"]
    assert project["readProjectStatus"]["parameters"] == {"name": "$response.body#/metadata/name"}


async def test_every_operation_documents_its_errors_as_status(doc: dict[str, Any]) -> None:
    for path, method, op in record_operations(doc):
        codes = set(op["responses"])
        assert {"401", "403", "404", "422", "503"} <= codes, (path, method)
        for code in codes - {"200", "201"}:
            assert op["responses"][code]["content"]["application/json"]["schema"] == STATUS
        if method in ("post", "put", "patch"):
            assert {"400", "409", "413"} <= codes, (path, method)
        if method == "patch":
            assert "415" in codes
        if method == "get" and not path.endswith(("{name}", "/status")):
            assert "Retry-After" in op["responses"]["429"]["headers"]
    not_allowed = doc["components"]["responses"]["MethodNotAllowed"]
    assert not_allowed["headers"]["Allow"]["required"] is True
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    exec_ = doc["paths"][f"{P}/projects/{{project}}/containers/{{name}}/exec"]["post"]
    assert {"409", "429"} <= set(exec_["responses"])


async def test_error_answers_are_what_the_status_schema_says(
    client: httpx.AsyncClient, doc: dict[str, Any]
) -> None:
    schema = doc["components"]["schemas"]["Status"]
    bad = {"metadata": {"name": "web"}, "spec": {"image": "x", "ports": [{"hostPort": 1}]}}
    answers = [
        await client.post(f"{P}/projects/demo/containers", json=bad),
        await client.get(f"{P}/hosts/nope"),
        await client.get(f"{P}/hosts", headers={"Authorization": ""}),
        await client.get(f"{P}/hosts?limit=-1"),
    ]
    assert [a.status_code for a in answers] == [422, 404, 401, 422]
    for answer in answers:
        jsonschema_rs.validate(schema, answer.json())


async def test_bearer_scheme_everywhere_but_health(
    client: httpx.AsyncClient, doc: dict[str, Any]
) -> None:
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert doc["paths"]["/readyz"]["get"]["security"] == []
    assert all("security" not in op for _, _, op in record_operations(doc))
    assert (await client.get("/healthz", headers={"Authorization": ""})).status_code == 200


async def test_a_method_a_path_does_not_take_is_405_with_allow(client: httpx.AsyncClient) -> None:
    await client.post(
        f"{P}/projects/demo/containers", json={"metadata": {"name": "web"}, "spec": {"image": "x"}}
    )
    r = await client.put(f"{P}/projects/demo/containers/web/status", json={})
    assert (r.status_code, r.headers["allow"], r.json()["reason"]) == (
        405,
        "GET",
        "MethodNotAllowed",
    )
    r = await client.post(f"{P}/projects/demo/containers/web", json={})
    assert (r.status_code, r.headers["allow"]) == (405, "GET, PUT, PATCH, DELETE")
    r = await client.delete(f"{P}/containers")
    assert (r.status_code, r.headers["allow"]) == (405, "GET")
    r = await client.post("/v1")
    assert (r.status_code, r.headers["allow"]) == (405, "GET")


async def test_an_unknown_path_is_404_saying_why(client: httpx.AsyncClient) -> None:
    for path, why in [
        (f"{P}/nope", "no kind with plural 'nope'"),
        (f"{P}/projects/demo/hosts", "hosts are cluster-scoped"),
        (f"{P}/containers/web", "containers are project-scoped"),
        ("/nowhere", "no such path"),
    ]:
        r = await client.get(path)
        assert (r.status_code, r.json()["kind"]) == (404, "Status"), path
        assert why in r.json()["message"]
    assert "allow" not in r.headers


async def test_a_cluster_scoped_records_status_is_not_a_project_list(
    client: httpx.AsyncClient,
) -> None:
    made = await client.post(f"{P}/projects", json={"metadata": {"name": "fz"}, "spec": {}})
    assert made.status_code == 201, made.text
    r = await client.get(f"{P}/projects/fz/status")
    assert (r.status_code, r.json()["kind"]) == (200, "Project")
    assert (await client.get(f"{P}/quotas/fz/status")).status_code == 404
    listed = await client.get(f"{P}/projects/fz/containers")
    assert (listed.status_code, listed.json()["kind"]) == (200, "ContainerList")


async def test_dns_labels_say_what_the_validator_takes(doc: dict[str, Any]) -> None:
    meta = doc["components"]["schemas"]["ObjectMeta"]["properties"]
    assert DNS_LABEL_SCHEMA.items() <= meta["name"].items()
    labels = meta["labels"]
    assert {"propertyNames", "additionalProperties"} <= set(labels)


PATTERN = re.compile(str(DNS_LABEL_SCHEMA["pattern"]))


@given(st.from_regex(PATTERN, fullmatch=True) | st.text(max_size=70))
def test_the_dns_label_pattern_accepts_exactly_what_the_validator_does(name: str) -> None:
    fits = PATTERN.fullmatch(name) is not None and 1 <= len(name) <= 63
    try:
        ObjectMeta(name=name)
    except ValueError:
        assert not fits, name
    else:
        assert fits, name
