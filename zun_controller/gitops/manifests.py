"""Manifests to records: every document of every file validated before anything is written,
so a commit with one bad manifest applies nothing; errors name the file and the field."""

from __future__ import annotations

from typing import Any

from zun_controller.errors import FieldError, InvalidError
from zun_controller.models.base import Resource, Scope
from zun_controller.models.ownership import GITOPS_REPOSITORY, SOURCE
from zun_controller.models.registry import parse
from zun_controller.models.safe_yaml import brief, load_all

FROM_GITOPS = "gitops"
APPLY_SET = GITOPS_REPOSITORY


def _documents(name: str, text: str) -> list[Any]:
    return load_all(text, name)


def load_records(files: dict[str, str], project: str, owner: str) -> list[Resource]:
    """Every record the files declare, in the repository's project, marked as owned by it."""
    records, errors = [], []
    for name, text in sorted(files.items()):
        for i, doc in enumerate(_documents(name, text)):
            where = f"{name}[{i}]" if i else name
            try:
                records.append(_record(doc, project, owner))
            except InvalidError as exc:
                errors += [FieldError(f"{where}: {e.path}", e.reason) for e in exc.errors]
    keys = [r.key for r in records]
    errors += [
        FieldError(k, "declared twice") for k in sorted({k for k in keys if keys.count(k) > 1})
    ]
    if errors:
        raise InvalidError(errors)
    return records


def _record(doc: Any, project: str, owner: str) -> Resource:
    if isinstance(doc, dict):
        meta = doc.setdefault("metadata", {})
        if isinstance(meta, dict):
            meta.setdefault("project", project)
    obj = parse(doc)
    if obj.KIND.scope is not Scope.PROJECT:
        raise InvalidError.at(
            "kind", f"{obj.KIND.kind} is cluster-scoped: not managed from a project's repository"
        )
    if obj.project != project:
        raise InvalidError.at(
            "metadata.project", f"must be {brief(project)}, the repository's project"
        )
    obj.metadata.labels[APPLY_SET] = owner
    obj.metadata.annotations[SOURCE] = FROM_GITOPS
    return obj
