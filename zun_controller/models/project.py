"""`Project` (a tenant: what tokens are scoped to) and `Quota` (a project's limits and usage).

Both are cluster-scoped: only admins create or change them, so a member cannot raise its own
project's quota. A Quota is named after its project (`metadata.name` = the project's name);
`status.used` is filled in by the API from the usage the store charges atomically on create.

`Project.spec.runtime` is the OCI runtime the project's containers run under (a sandbox such as
gVisor's `runsc` for untrusted tenants, as a Kubernetes RuntimeClass): admission writes it into
every Container and Application template container created (or, for a template, changed) in
the project without a runtime, and refuses any other runtime from a writer without admin
rights (zun_controller/admission/runtime.py, docs/security.md "Sandboxed runtime").
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zun_controller.models.base import KindInfo, Model, Resource, Scope, Status, at_default
from zun_controller.models.quantity import Cores, MemoryBytes


class ProjectSpec(Model):
    description: str = ""
    #: the OCI runtime the project's new containers get and members cannot leave (the engine's
    #: default, runc, when unset); a runtime registered on the project's Hosts
    runtime: str | None = Field(default=None, min_length=1, exclude_if=at_default)


class Project(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Project",
        plural="projects",
        scope=Scope.CLUSTER,
        short_names=["proj"],
        columns=[("Description", ".spec.description")],
    )

    kind: Literal["Project"] = "Project"
    spec: ProjectSpec = Field(default_factory=ProjectSpec)


class QuotaLimits(Model):
    """Limits of one project; an unset limit means no limit on that resource."""

    containers: int | None = Field(default=None, ge=0)
    applications: int | None = Field(default=None, ge=0)
    replicas: int | None = Field(default=None, ge=0)
    cpu: Cores | None = None
    memory: MemoryBytes | None = None
    volumes: int | None = Field(default=None, ge=0)
    networks: int | None = Field(default=None, ge=0)
    gitrepositories: int | None = Field(default=None, ge=0)


class QuotaUsage(Model):
    containers: int = 0
    applications: int = 0
    replicas: int = 0
    cpu: float = 0.0
    memory: int = 0
    volumes: int = 0
    networks: int = Field(default=0, exclude_if=at_default)
    gitrepositories: int = Field(default=0, exclude_if=at_default)


class QuotaSpec(Model):
    limits: QuotaLimits = Field(default_factory=QuotaLimits)


class QuotaStatus(Status):
    used: QuotaUsage = Field(default_factory=QuotaUsage)


class Quota(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Quota",
        plural="quotas",
        scope=Scope.CLUSTER,
        short_names=["quota"],
        columns=[
            ("Containers", ".spec.limits.containers"),
            ("Used", ".status.used.containers"),
            ("Replicas", ".spec.limits.replicas"),
        ],
    )

    kind: Literal["Quota"] = "Quota"
    spec: QuotaSpec = Field(default_factory=QuotaSpec)
    status: QuotaStatus = Field(default_factory=QuotaStatus)
