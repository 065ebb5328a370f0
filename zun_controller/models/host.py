"""`Host`: one container engine endpoint (Docker API), where Containers are placed.

`spec.runtime` (admin-set, as the whole Host is) makes the engine run only that OCI runtime:
containers naming none are created under it, and the scheduler places no container naming
another there (an engine kept for untrusted workloads). A runtime a record names is never
replaced, so a Host cannot take a container out of its project's sandbox either. It takes
effect when a container is created there; containers already running stay as they are. The
scheduler places a container only on Hosts that report the runtime it would run under
(`status.runtimes`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from zun_controller.models.base import KindInfo, Model, Resource, Scope, Status, at_default
from zun_controller.models.quantity import Cores, MemoryBytes


class TLSFiles(Model):
    """TLS material by reference: paths readable by the controller, never the keys themselves."""

    ca_file: str
    cert_file: str
    key_file: str


class Capacity(Model):
    cpu: Cores | None = None
    memory: MemoryBytes | None = None


class HostSpec(Model):
    endpoint: str = Field(description="unix:///path/to/docker.sock or tcp://host:port")
    tls: TLSFiles | None = None
    #: overrides what the engine reports, e.g. to keep room for the host itself
    capacity: Capacity = Field(default_factory=Capacity)
    schedulable: bool = True
    #: the only OCI runtime this engine runs: containers naming none get it, containers naming
    #: another are not placed here; unset: each container's own (or the engine's default)
    runtime: str | None = Field(default=None, min_length=1, exclude_if=at_default)

    @field_validator("endpoint")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("unix://", "tcp://", "http://", "https://")):
            raise ValueError("must start with unix://, tcp://, http:// or https://")
        return value


class Usage(Model):
    cpu: float = 0.0
    memory: int = 0


class HostStatus(Status):
    reachable: bool = False
    version: str | None = None
    api_version: str | None = None
    capacity: Usage = Field(default_factory=Usage)
    allocated: Usage = Field(default_factory=Usage)
    containers: int = 0
    runtimes: list[str] = Field(default_factory=list)


class Host(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Host",
        plural="hosts",
        scope=Scope.CLUSTER,
        short_names=["host"],
        columns=[
            ("Ready", ".status.phase"),
            ("Version", ".status.version"),
            ("Containers", ".status.containers"),
            ("Endpoint", ".spec.endpoint"),
        ],
    )

    kind: Literal["Host"] = "Host"
    spec: HostSpec
    status: HostStatus = Field(default_factory=HostStatus)
