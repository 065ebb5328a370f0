"""Where records live in etcd: `/zun/registry/<plural>/<project>/<name>` or `/<plural>/<name>`."""

from __future__ import annotations

from zun_controller.models.base import KindInfo, Scope

ROOT = "/zun/registry/"


def record_key(info: KindInfo, name: str, project: str | None) -> str:
    if info.scope is Scope.PROJECT:
        return f"{ROOT}{info.plural}/{project}/{name}"
    return f"{ROOT}{info.plural}/{name}"


def kind_prefix(info: KindInfo, project: str | None = None) -> str:
    """Every record of a kind, or of a kind in one project."""
    if info.scope is Scope.PROJECT and project:
        return f"{ROOT}{info.plural}/{project}/"
    return f"{ROOT}{info.plural}/"


def queue_key(etcd_key: str) -> str:
    """The workqueue key (`plural/project/name`) of an etcd key."""
    return etcd_key.removeprefix(ROOT)


def split_queue_key(key: str) -> tuple[str, str | None, str]:
    """(plural, project or None, name) of a workqueue key."""
    parts = key.split("/")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return parts[0], None, parts[1]
