"""The pure rules of admission: each takes a record (and the one it replaces) and answers the
`FieldError`s it breaks, with wire (camelCase) field paths; none reads the store.

- `sizes`: every list and map of spec and metadata holds at most `max_items` entries;
  `Application.spec.replicas` is at most `max_replicas`.
- `quantities`: a cpu or memory that is set is finite, greater than 0 and at most the
  policy's bound.
- `ports`: a published port's `hostIp` is an allowed address; a fixed `hostPort` / `nodePort`
  is in the allowed range (never under 1024) and not reserved (the API's own port).
- `admin_fields`: the `acts-as` annotation keeps the value the replaced record had (the OCI
  runtime, admin-only too, has rules of its own: admission/runtime.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from zun_controller.admission.policy import ACTS_AS, AdmissionPolicy
from zun_controller.errors import FieldError
from zun_controller.models.application import Application
from zun_controller.models.base import Resource
from zun_controller.models.container import Container, ContainerTemplate


def templates(obj: Resource) -> Iterator[tuple[str, ContainerTemplate]]:
    """Every container template the record carries, with its wire path."""
    if isinstance(obj, Container):
        yield "spec", obj.spec
    elif isinstance(obj, Application):
        for i, c in enumerate(obj.spec.template.containers):
            yield f"spec.template.containers[{i}]", c


def sizes(obj: Resource, policy: AdmissionPolicy) -> list[FieldError]:
    out = list(_oversized(obj.spec, "spec", policy.max_items))
    out += _oversized(obj.metadata, "metadata", policy.max_items)
    if isinstance(obj, Application) and obj.spec.replicas > policy.max_replicas:
        out.append(FieldError("spec.replicas", f"must be at most {policy.max_replicas}"))
    return out


def _oversized(value: Any, path: str, cap: int) -> Iterator[FieldError]:
    """Lists and maps over `cap` entries, anywhere under a model (its fields are not counted)."""
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from _oversized(getattr(value, name), f"{path}.{info.alias or name}", cap)
    elif isinstance(value, dict | list) and len(value) > cap:
        yield FieldError(path, f"must have at most {cap} entries, not {len(value)}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _oversized(item, f"{path}[{i}]", cap)


def quantities(obj: Resource, policy: AdmissionPolicy) -> list[FieldError]:
    out = []
    for path, c in templates(obj):
        cpu, memory = c.resources.cpu, c.resources.memory
        if cpu is not None and not 0 < cpu <= policy.max_cpu:
            out.append(
                FieldError(f"{path}.resources.cpu", f"must be > 0 and <= {policy.max_cpu:g}")
            )
        if memory is not None and not 0 < memory <= policy.max_memory:
            out.append(
                FieldError(f"{path}.resources.memory", f"must be > 0 and <= {policy.max_memory}")
            )
    return out


def ports(obj: Resource, policy: AdmissionPolicy) -> list[FieldError]:
    out = []
    for path, c in templates(obj):
        for i, p in enumerate(c.ports):
            where = f"{path}.ports[{i}]"
            if p.host_ip not in policy.allowed_host_ips:
                allowed = ", ".join(sorted(policy.allowed_host_ips))
                out.append(FieldError(f"{where}.hostIp", f"must be one of: {allowed}"))
            out += _fixed_port(f"{where}.hostPort", p.host_port, policy)
    if isinstance(obj, Application) and obj.spec.service is not None:
        for i, s in enumerate(obj.spec.service.ports):
            out += _fixed_port(f"spec.service.ports[{i}].nodePort", s.node_port, policy)
    return out


def _fixed_port(path: str, port: int | None, policy: AdmissionPolicy) -> list[FieldError]:
    if not port:
        return []  # the engine picks one
    low, high = policy.host_ports
    if not low <= port <= high:
        return [FieldError(path, f"must be 0 (engine-picked) or in {low}-{high}")]
    if port in policy.reserved_ports:
        return [FieldError(path, f"{port} is reserved (the API's own port)")]
    return []


def admin_fields(obj: Resource, old: Resource | None) -> list[FieldError]:
    """Admin-only fields this write sets or changes (`old`: the record it replaces)."""
    was_acts = old.metadata.annotations.get(ACTS_AS) if old is not None else None
    if obj.metadata.annotations.get(ACTS_AS) != was_acts:
        where = f"metadata.annotations[{ACTS_AS}]"
        return [FieldError(where, "only an admin may set or change it")]
    return []


def runtimes_of(obj: Resource) -> set[str | None]:
    """The OCI runtimes a record's templates name (None: the engine's default)."""
    return {c.runtime for _, c in templates(obj)}
