"""`Network` and `Volume`: per-project Docker networks and volumes that Containers attach to."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zun_controller.models.base import KindInfo, Model, Resource, Scope, Status


class NetworkSpec(Model):
    #: no route out of the network (Docker's --internal)
    internal: bool = False


class NetworkStatus(Status):
    #: host name -> engine network id, on every host the network exists on
    hosts: dict[str, str] = Field(default_factory=dict)


class Network(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Network",
        plural="networks",
        scope=Scope.PROJECT,
        short_names=["net"],
        columns=[("Phase", ".status.phase")],
    )

    kind: Literal["Network"] = "Network"
    spec: NetworkSpec = Field(default_factory=NetworkSpec)
    status: NetworkStatus = Field(default_factory=NetworkStatus)


class VolumeSpec(Model):
    #: the host to create it on; unset: the host of the first Container that mounts it
    host: str | None = None


class VolumeStatus(Status):
    host: str | None = None
    mountpoint: str | None = None
    used_by: list[str] = Field(default_factory=list)


class Volume(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Volume",
        plural="volumes",
        scope=Scope.PROJECT,
        short_names=["vol"],
        columns=[("Phase", ".status.phase"), ("Host", ".status.host")],
    )

    kind: Literal["Volume"] = "Volume"
    spec: VolumeSpec = Field(default_factory=VolumeSpec)
    status: VolumeStatus = Field(default_factory=VolumeStatus)
