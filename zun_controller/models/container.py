"""`Container`: one container on one Docker host, the reference implementation's unit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field, model_validator

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
from zun_controller.models.image import ImagePullPolicy, ImageRef, PullSecretRef
from zun_controller.models.quantity import Cores, MemoryBytes


class DesiredState(StrEnum):
    RUNNING = "Running"
    STOPPED = "Stopped"
    PAUSED = "Paused"


class RestartPolicy(StrEnum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"


class EnvVar(Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str = ""


class Port(Model):
    container_port: int = Field(ge=1, le=65535)
    host_port: int | None = Field(default=None, ge=0, le=65535)
    host_ip: str = "127.0.0.1"
    protocol: Protocol = Protocol.TCP
    name: str | None = None


class Resources(Model):
    cpu: Cores | None = None
    memory: MemoryBytes | None = None


class HttpGet(Model):
    path: str = "/"
    port: int = Field(ge=1, le=65535)


class Healthcheck(Model):
    """Either a command run inside the container or an HTTP GET against it."""

    command: list[str] | None = None
    http_get: HttpGet | None = None
    interval_seconds: float = Field(default=5.0, gt=0)
    timeout_seconds: float = Field(default=2.0, gt=0)
    retries: int = Field(default=3, ge=1)
    start_period_seconds: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _one_probe(self) -> Healthcheck:
        if (self.command is None) == (self.http_get is None):
            raise ValueError("set exactly one of command or httpGet")
        return self


class VolumeMount(Model):
    volume: DNSLabel
    mount_path: str = Field(pattern=r"^/")
    read_only: bool = False


class ContainerTemplate(Model):
    """What a container is. An Application's template takes this (its revision is a hash of
    it, so a field added here would roll every Application); the Container spec adds the
    one-shot requests."""

    image: ImageRef
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[EnvVar] = Field(default_factory=list)
    workdir: str | None = None
    labels: Labels = Field(default_factory=dict)
    ports: list[Port] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    state: DesiredState = DesiredState.RUNNING
    networks: list[DNSLabel] = Field(default_factory=list)
    volumes: list[VolumeMount] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    host_selector: Labels = Field(default_factory=dict)
    #: OCI runtime registered with the engine (runc when unset); admin-only.
    runtime: str | None = None
    #: when to pull before creating; unset is Kubernetes' default (models/image.py). Left out
    #: of every dump while unset, and empty pull secrets too, so the revision of a template
    #: written before these fields existed stays what it was.
    image_pull_policy: ImagePullPolicy | None = Field(default=None, exclude_if=at_default)
    #: PullSecrets of the record's project holding the registry credentials
    image_pull_secrets: list[PullSecretRef] = Field(default_factory=list, exclude_if=at_default)

    @model_validator(mode="after")
    def _unique_ports(self) -> ContainerTemplate:
        seen: set[tuple[int, Protocol]] = set()
        for port in self.ports:
            if (port.container_port, port.protocol) in seen:
                raise ValueError(f"containerPort {port.container_port} is listed twice")
            seen.add((port.container_port, port.protocol))
        return self


class ContainerSpec(ContainerTemplate):
    #: set to a time later than status.restartedAt to restart the container once, in place (as
    #: `kubectl rollout restart` asks by a timestamp); an older value or none asks nothing
    restarted_at: AwareDatetime | None = None
    #: part of the config hash: changing it recreates the container from its image (Zun's
    #: rebuild); unset, it leaves the hash as it was before the field existed
    rebuilt_at: AwareDatetime | None = None


class ContainerPhase(StrEnum):
    PENDING = "Pending"
    CREATING = "Creating"
    RUNNING = "Running"
    STOPPED = "Stopped"
    PAUSED = "Paused"
    ERROR = "Error"
    DELETING = "Deleting"


class PublishedPort(Model):
    container_port: int
    protocol: Protocol = Protocol.TCP
    host_ip: str
    host_port: int


class ContainerStatus(Status):
    host: str | None = None
    container_id: str | None = None
    ips: dict[str, str] = Field(default_factory=dict)
    ports: list[PublishedPort] = Field(default_factory=list)
    started_at: datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    health: str | None = None
    #: the latest spec.restartedAt acted on (restarted, or nothing to restart)
    restarted_at: AwareDatetime | None = None
    #: the image the container runs, by digest (`repository@sha256:...`, or the engine's
    #: image id when it has no repository digest)
    image_id: str | None = Field(default=None, alias="imageID")


class Container(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Container",
        plural="containers",
        scope=Scope.PROJECT,
        short_names=["ctr"],
        columns=[
            ("Phase", ".status.phase"),
            ("Host", ".status.host"),
            ("Image", ".spec.image"),
        ],
    )

    kind: Literal["Container"] = "Container"
    spec: ContainerSpec
    status: ContainerStatus = Field(default_factory=ContainerStatus)

    def restart_pending(self) -> bool:
        """Whether spec.restartedAt asks for a restart not acted on yet: it is newer than the
        one status records. Newer, not different: a writer that puts back an older spec (a
        Git source, the Kubernetes bridge) must not restart the container again."""
        asked, done = self.spec.restarted_at, self.status.restarted_at
        return asked is not None and (done is None or asked > done)
