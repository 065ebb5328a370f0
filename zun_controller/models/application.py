"""`Application` (one app as N replicas of one or more containers, behind a service, upgraded by
rolling update, on any COE), `Cluster` (which COE and how to reach it) and `Secret` (credentials
that Clusters reference by name, never copied into status, logs or events)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from zun_controller.models.base import (
    DNSLabel,
    KindInfo,
    Labels,
    Model,
    Resource,
    Scope,
    Status,
    at_default,
)
from zun_controller.models.container import ContainerTemplate, Healthcheck, Protocol
from zun_controller.models.host import Usage


class AppContainer(ContainerTemplate):
    """A container of the template: the Container spec, plus its name within a replica."""

    name: DNSLabel


class AppTemplate(Model):
    labels: Labels = Field(default_factory=dict)
    containers: list[AppContainer] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> AppTemplate:
        names = [c.name for c in self.containers]
        if len(names) != len(set(names)):
            raise ValueError("container names must be unique within the template")
        return self


class ServiceType(StrEnum):
    LOAD_BALANCER = "LoadBalancer"
    NODE_PORT = "NodePort"
    INTERNAL = "Internal"


class ServicePort(Model):
    #: where clients connect (the load balancer's or Service's port)
    port: int = Field(ge=1, le=65535)
    #: the container port it forwards to
    target_port: int = Field(ge=1, le=65535)
    protocol: Protocol = Protocol.TCP
    #: the host port published for LoadBalancer/NodePort (engine-picked when unset)
    node_port: int | None = Field(default=None, ge=1, le=65535)


class AppService(Model):
    type: ServiceType = ServiceType.LOAD_BALANCER
    ports: list[ServicePort] = Field(default_factory=list)


IntOrPercent = int | str


def _int_or_percent(value: IntOrPercent) -> IntOrPercent:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if not value.endswith("%") or not value[:-1].isdigit():
        raise ValueError("must be a count or a percentage such as 25%")
    return value


class RollingUpdate(Model):
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"

    _check = field_validator("max_surge", "max_unavailable")(_int_or_percent)

    @model_validator(mode="after")
    def _not_both_zero(self) -> RollingUpdate:
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ValueError("maxSurge and maxUnavailable cannot both be 0")
        return self


class StrategyType(StrEnum):
    ROLLING_UPDATE = "RollingUpdate"
    RECREATE = "Recreate"


class UpdateStrategy(Model):
    type: StrategyType = StrategyType.ROLLING_UPDATE
    rolling_update: RollingUpdate = Field(default_factory=RollingUpdate)
    min_ready_seconds: int = Field(default=0, ge=0)
    progress_deadline_seconds: int = Field(default=120, ge=1)


class ApplicationSpec(Model):
    cluster: DNSLabel
    replicas: int = Field(default=1, ge=0)
    template: AppTemplate
    service: AppService | None = None
    update_strategy: UpdateStrategy = Field(default_factory=UpdateStrategy)
    #: applies to every container of the template that has no healthcheck of its own
    healthcheck: Healthcheck | None = None
    #: roll back by itself when a new revision fails health or passes its deadline
    auto_rollback: bool = True


class Revision(Model):
    name: str
    template: AppTemplate


class Migration(Model):
    """A move of the Application from one Cluster to another (spec.cluster changed).

    Written before anything is made on `toCluster`. The side on `fromCluster` serves until
    the side on `toCluster` has every replica ready; then `status.cluster` names `toCluster`
    and the side on `fromCluster` is removed; the record goes once it is gone.
    """

    from_cluster: str
    to_cluster: str
    #: when the current attempt began (its deadline is progressDeadlineSeconds from then);
    #: after the cut over, when that was (the old side goes a few seconds later)
    started: datetime
    #: ready replicas of the side on `toCluster`, and where it is reached
    ready_replicas: int = Field(default=0, exclude_if=at_default)
    endpoints: list[str] = Field(default_factory=list, exclude_if=at_default)
    #: attempts that failed; the side on `toCluster` was removed after each
    failures: int = Field(default=0, exclude_if=at_default)
    #: why the last attempt failed ("<Reason>: <message>"), while waiting for the next one
    failure: str | None = Field(default=None, exclude_if=at_default)
    #: when the next attempt begins (sooner when the spec changes again)
    retry_at: datetime | None = Field(default=None, exclude_if=at_default)
    #: the generation the last attempt failed at
    failed_generation: int = Field(default=0, exclude_if=at_default)
    #: something of the Application may be on `toCluster`: an apply was sent there (written
    #: before it is sent; cleared once a failed or abandoned side was removed)
    to_applied: bool = Field(default=False, exclude_if=at_default)


class ApplicationStatus(Status):
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    current_revision: str | None = None
    previous_revision: str | None = None
    #: a revision that failed and was rolled back; not tried again until the template changes
    failed_revision: str | None = None
    #: the templates of current and previous revision, for rollback (at most a few)
    history: list[Revision] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=list)
    #: during a migration, the Cluster whose side serves the Application (settled, condition
    #: `Migrating` says it: `on Cluster <name>`; reconcilers/app_migration.py)
    cluster: str | None = Field(default=None, exclude_if=at_default)
    #: a move between Clusters under way (or failed and waiting to be tried again)
    migration: Migration | None = Field(default=None, exclude_if=at_default)


class Application(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Application",
        plural="applications",
        scope=Scope.PROJECT,
        short_names=["app"],
        columns=[
            ("Cluster", ".spec.cluster"),
            ("Desired", ".spec.replicas"),
            ("Ready", ".status.readyReplicas"),
            ("Revision", ".status.currentRevision"),
        ],
    )

    kind: Literal["Application"] = "Application"
    spec: ApplicationSpec
    status: ApplicationStatus = Field(default_factory=ApplicationStatus)


class ClusterType(StrEnum):
    SWARM = "swarm"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class SecretRef(Model):
    name: DNSLabel


class ClusterSpec(Model):
    type: ClusterType
    #: swarm: a manager's Docker API (unix:// or tcp://); unused for docker and kubernetes
    endpoint: str | None = None
    #: swarm: a Secret with keys ca.pem, cert.pem, key.pem for a tcp endpoint
    tls_secret: SecretRef | None = None
    #: kubernetes: a Secret with key `kubeconfig`
    kubeconfig_secret: SecretRef | None = None
    #: docker: which Hosts run the replicas (all schedulable Hosts when empty)
    host_selector: Labels = Field(default_factory=dict)
    #: the projects whose Applications may name this Cluster; empty: every project
    allowed_projects: list[DNSLabel] = Field(default_factory=list, exclude_if=at_default)

    @model_validator(mode="after")
    def _reachable(self) -> ClusterSpec:
        if self.type is ClusterType.SWARM and not self.endpoint:
            raise ValueError("a swarm cluster needs an endpoint")
        if self.type is ClusterType.KUBERNETES and self.kubeconfig_secret is None:
            raise ValueError("a kubernetes cluster needs kubeconfigSecret")
        return self


class ClusterStatus(Status):
    reachable: bool = False
    version: str | None = None
    nodes: int = 0
    capacity: Usage = Field(default_factory=Usage)


class Cluster(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Cluster",
        plural="clusters",
        scope=Scope.CLUSTER,
        short_names=["coe"],
        columns=[("Type", ".spec.type"), ("Ready", ".status.phase"), ("Nodes", ".status.nodes")],
    )

    kind: Literal["Cluster"] = "Cluster"
    spec: ClusterSpec
    status: ClusterStatus = Field(default_factory=ClusterStatus)


class SecretSpec(Model):
    #: values in clear (etcd is the trust boundary); never shown in status, logs or events
    data: dict[str, str] = Field(default_factory=dict)


class Secret(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Secret", plural="secrets", scope=Scope.CLUSTER, short_names=["sec"]
    )

    kind: Literal["Secret"] = "Secret"
    spec: SecretSpec = Field(default_factory=SecretSpec)
