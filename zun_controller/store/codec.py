"""Records as etcd values: compact JSON without resourceVersion (that is the key's mod_revision).

`decode` never trusts what it reads: records may be written straight to etcd by hand.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import ValidationError

from zun_controller.errors import InvalidError
from zun_controller.models.base import Resource
from zun_controller.models.registry import check_scope, field_errors

R = TypeVar("R", bound=Resource)


def encode(obj: Resource) -> bytes:
    wire = obj.to_wire()
    wire["metadata"].pop("resourceVersion", None)
    return json.dumps(wire, separators=(",", ":"), sort_keys=True).encode()


def load(value: bytes) -> dict[str, Any]:
    """The JSON object of a value; `InvalidError` when it is not a JSON object."""
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidError.at("", f"value is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidError.at("", "value is not a JSON object")
    return data


def decode(cls: type[R], value: bytes, mod_revision: int) -> R:
    """A validated record of a stored value; `InvalidError` names the bad fields.

    An error at path "" means the value is not a JSON object at all.
    """
    try:
        obj = cls.model_validate_json(value)
    except ValidationError as exc:
        if any(e["type"] in ("json_invalid", "model_type") for e in exc.errors()):
            raise InvalidError.at("", "value is not a JSON record") from None
        raise InvalidError(field_errors(exc)) from None
    check_scope(obj)
    obj.metadata.resource_version = str(mod_revision)
    return obj


def with_status(stored: bytes, obj: Resource) -> bytes:
    """The stored value with its status replaced by obj's: spec and metadata stay as stored."""
    data = load(stored)
    data["status"] = obj.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
