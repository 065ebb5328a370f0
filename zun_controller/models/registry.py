"""The kind registry, and parsing of untrusted input into records with field-named errors."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from zun_controller.errors import FieldError, InvalidError
from zun_controller.models.application import Application, Cluster, Secret
from zun_controller.models.base import API_VERSION, Resource, Scope
from zun_controller.models.container import Container
from zun_controller.models.event import Event
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.gitsecret import GitSecret
from zun_controller.models.host import Host
from zun_controller.models.network import Network, Volume
from zun_controller.models.project import Project, Quota
from zun_controller.models.pullsecret import PullSecret
from zun_controller.models.safe_yaml import brief

_KINDS: dict[str, type[Resource]] = {}


def register(cls: type[Resource]) -> type[Resource]:
    _KINDS[cls.KIND.kind] = cls
    return cls


for _cls in (
    Container,
    Host,
    Network,
    Volume,
    Application,
    Cluster,
    Secret,
    PullSecret,
    Project,
    Quota,
    Event,
    GitRepository,
    GitSecret,
):
    register(_cls)


def kinds() -> list[type[Resource]]:
    return list(_KINDS.values())


def by_kind(kind: str) -> type[Resource]:
    try:
        return _KINDS[kind]
    except KeyError:
        raise InvalidError.at(
            "kind", f"unknown kind {brief(kind)}; known kinds: {_known()}"
        ) from None


def lookup(name: str) -> type[Resource]:
    """A kind by its name, plural or short name, any case (as `zunctl get` and URLs use them)."""
    wanted = name.lower()
    for cls in _KINDS.values():
        info = cls.KIND
        names = {info.kind.lower(), info.plural, *info.short_names}
        if wanted in names:
            return cls
    raise InvalidError.at("kind", f"unknown kind {name!r}; known kinds: {_known()}")


def _known() -> str:
    return ", ".join(sorted(_KINDS))


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Pydantic errors as dotted wire paths (`spec.ports[0].hostPort`) with their reasons."""
    out = []
    for err in exc.errors(include_url=False):
        path = prefix
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part.startswith(("function-after", "function-before")):
                continue
            else:
                path = f"{path}.{part}" if path else str(part)
        reason = err["msg"].removeprefix("Value error, ")
        out.append(FieldError(path, reason))
    return out


def parse(data: Any) -> Resource:
    """A validated record from decoded JSON/YAML; `InvalidError` names each bad field."""
    if not isinstance(data, dict):
        raise InvalidError.at(
            "", "a record must be a mapping with apiVersion, kind, metadata, spec"
        )
    if data.get("apiVersion") != API_VERSION:
        raise InvalidError.at(
            "apiVersion", f"must be {API_VERSION!r}, got {brief(data.get('apiVersion'))}"
        )
    kind = data.get("kind")
    cls = by_kind(kind if isinstance(kind, str) else str(type(kind).__name__))
    return validate_as(cls, data)


def validate_as(cls: type[Resource], data: Any) -> Resource:
    try:
        obj = cls.model_validate(data)
    except ValidationError as exc:
        raise InvalidError(field_errors(exc)) from None
    check_scope(obj)
    return obj


def check_scope(obj: Resource) -> None:
    scoped = obj.KIND.scope is Scope.PROJECT
    if scoped and not obj.metadata.project:
        raise InvalidError.at(
            "metadata.project", f"{obj.KIND.kind} is project-scoped: set a project"
        )
    if not scoped and obj.metadata.project:
        raise InvalidError.at(
            "metadata.project", f"{obj.KIND.kind} is cluster-scoped: leave project unset"
        )
