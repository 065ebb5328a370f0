"""Records as etcd values: compact JSON without resourceVersion (that is the key's mod_revision).

`decode` never trusts what it reads: records may be written straight to etcd by hand.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from zun_controller.errors import InvalidError
from zun_controller.models.base import Resource
from zun_controller.models.registry import validate_as

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
    data = load(value)
    meta = data.get("metadata")
    if isinstance(meta, dict):
        meta["resourceVersion"] = str(mod_revision)
    obj = validate_as(cls, data)
    assert isinstance(obj, cls)
    return obj
