"""The served OpenAPI document (`/openapi.json`): what each path takes and answers.

- One path per kind and operation (api/routes.py), with an `operationId` such as
  `createContainer`, `listContainerAcrossProjects`, `readProjectStatus`.
- Bodies are the kind's record model, in `components.schemas` under the kind's name (and
  `{Kind}List` for lists): JSON schemas of the pydantic models in validation mode, so a body
  the document describes is one the models parse. PATCH takes a JSON merge patch of it;
  DELETE an optional `DeleteOptions`.
- Every error an operation may answer is documented with the Kubernetes `Status` body
  (api/errors.py); 429 with `Retry-After`, 405 (`components.responses.MethodNotAllowed`) with
  `Allow`.
- Security: a `bearer` HTTP scheme on every operation but `/healthz` and `/readyz`.
- A create's 201 links to the record's read, replace, patch, delete and status operations
  (`name` from the answer's `metadata.name`, `project` from the request's path).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from zun_controller.api.errors import REASONS, STATUS_SCHEMA
from zun_controller.api.examples import example
from zun_controller.models.base import API_VERSION, Resource
from zun_controller.models.deletion import PropagationPolicy
from zun_controller.models.registry import kinds

SCHEMAS = "#/components/schemas/"
MERGE_PATCH = "application/merge-patch+json"
NDJSON = "application/x-ndjson"
#: what every operation on a record may fail with, and (`_EXTRA`) what each may also
_COMMON = (401, 403, 404, 422, 503)
_BODY = (400, 409, 413)
_EXTRA = {
    "list": (429,),
    "create": _BODY,
    "replace": _BODY,
    "patch": (*_BODY, 415),
    "delete": _BODY,
}
_SUCCESS = {"list": "the records, or with watch=true a stream of changes", "create": "created"}
_NAMED_OPS = ("read", "replace", "patch", "delete", "readStatus")

DESCRIPTION = (
    "Zun's records (apiVersion zun.openstack.org/v1alpha1) as Kubernetes-style resources. "
    "Errors are Kubernetes Status bodies; a method a path does not take is 405 with Allow."
)


def ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def operation_id(op: str, cls: type[Resource], *, across: bool = False) -> str:
    """`createContainer`, `readProjectStatus`, `listContainerAcrossProjects`."""
    kind = cls.KIND.kind
    if op == "readStatus":
        return f"read{kind}Status"
    return f"{op}{kind}" + ("AcrossProjects" if across else "")


def errors(*codes: int) -> dict[str, Any]:
    """Responses for `codes`, each a Status body (429 also with `Retry-After`)."""
    out: dict[str, Any] = {}
    for code in sorted(set(codes)):
        response: dict[str, Any] = {
            "description": REASONS[code],
            "content": json_content(ref("Status")),
        }
        if code == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        out[str(code)] = response
    return out


def _links(cls: type[Resource], scoped: bool) -> dict[str, Any]:
    params = {"name": "$response.body#/metadata/name"}
    if scoped:
        params["project"] = "$request.path.project"
    return {
        operation_id(op, cls): {"operationId": operation_id(op, cls), "parameters": params}
        for op in _NAMED_OPS
    }


def _request_body(op: str, kind: str) -> dict[str, Any] | None:
    if op == "create":
        media = {"schema": ref(kind), "example": example(kind)}
        return {"required": True, "content": {"application/json": media}}
    if op == "replace":
        return {"required": True, "content": json_content(ref(kind))}
    if op == "patch":
        patch = {"type": "object", "description": f"a JSON merge patch (RFC 7386) of a {kind}"}
        return {"required": True, "content": {MERGE_PATCH: {"schema": patch}}}
    if op == "delete":
        return {"required": False, "content": json_content(ref("DeleteOptions"))}
    return None


def operation(op: str, cls: type[Resource], *, scoped: bool) -> dict[str, Any]:
    """The `openapi_extra` of one record route: body, answers, links (op: list, create,
    read, replace, patch, delete, readStatus)."""
    kind = cls.KIND.kind
    code = "201" if op == "create" else "200"
    success: dict[str, Any] = {
        "description": _SUCCESS.get(op, f"the {kind} as it is now"),
        "content": json_content(ref(kind)),
    }
    if op == "list":
        success["content"] = {
            **json_content(ref(f"{kind}List")),
            NDJSON: {"schema": ref("WatchEvent")},
        }
    if op == "create":
        success["links"] = _links(cls, scoped)
    extra: dict[str, Any] = {"responses": {code: success, **errors(*_COMMON, *_EXTRA.get(op, ()))}}
    body = _request_body(op, kind)
    if body is not None:
        extra["requestBody"] = body
    return extra


def _list_schema(cls: type[Resource]) -> dict[str, Any]:
    kind = cls.KIND.kind
    meta = {
        "type": "object",
        "properties": {"resourceVersion": {"type": "string"}, "continue": {"type": "string"}},
        "required": ["resourceVersion"],
    }
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": f"{kind}List"},
            "metadata": meta,
            "items": {"type": "array", "items": ref(kind)},
        },
        "required": ["apiVersion", "kind", "metadata", "items"],
    }


_DELETE_OPTIONS = {
    "type": "object",
    "properties": {
        "kind": {"const": "DeleteOptions"},
        "apiVersion": {"type": "string"},
        "propagationPolicy": {"enum": [*(p.value for p in PropagationPolicy), None]},
    },
    "additionalProperties": False,
}
_WATCH_EVENT = {
    "type": "object",
    "description": "one line of a watch: a change, or ERROR with a Status (410: list again)",
    "properties": {
        "type": {"enum": ["ADDED", "MODIFIED", "DELETED", "ERROR"]},
        "object": {"type": "object"},
    },
    "required": ["type", "object"],
}


def _renamed(node: Any, old: str, new: str) -> Any:
    if isinstance(node, list):
        return [_renamed(n, old, new) for n in node]
    if isinstance(node, dict):
        return {
            k: new if k == "$ref" and v == old else _renamed(v, old, new) for k, v in node.items()
        }
    return node


def record_schemas() -> dict[str, Any]:
    """Every kind's record model (validation mode) and its list, by kind name. The models'
    own `Status` (what every record's status has) is `RecordStatus` here: `Status` is the
    error body's name, as in Kubernetes."""
    mode: JsonSchemaMode = "validation"
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(cls, mode) for cls in kinds()]
    refs, top = models_json_schema(pairs, by_alias=True, ref_template=SCHEMAS + "{model}")
    defs: dict[str, Any] = top["$defs"]
    if "Status" in defs:
        defs["RecordStatus"] = defs.pop("Status")
        defs = _renamed(defs, SCHEMAS + "Status", SCHEMAS + "RecordStatus")
    for cls in kinds():
        named = refs[(cls, mode)]["$ref"]
        assert named == SCHEMAS + cls.KIND.kind, f"{cls.KIND.kind} is documented as {named}"
        defs[f"{cls.KIND.kind}List"] = _list_schema(cls)
    return defs


def _status_errors(operation: dict[str, Any]) -> None:
    """FastAPI's own 422 (its parameter validation) answers a Status here (api/errors.py)."""
    for code, response in operation.get("responses", {}).items():
        if code == "422":
            response["description"] = REASONS[422]
            response["content"] = json_content(ref("Status"))


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.update(record_schemas())
    schemas.update(Status=STATUS_SCHEMA, DeleteOptions=_DELETE_OPTIONS, WatchEvent=_WATCH_EVENT)
    method_not_allowed = errors(405)["405"]
    method_not_allowed["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True}}
    components["responses"] = {"MethodNotAllowed": method_not_allowed}
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (zun_…)"}
    }
    doc["security"] = [{"bearer": []}]
    for item in doc["paths"].values():
        for op in item.values():
            _status_errors(op)
    return doc


def install(app: FastAPI) -> None:
    """Serve `build(app)` as the app's OpenAPI document (built once, on first request)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
