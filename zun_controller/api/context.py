"""What every request handler needs, built once by the composition root and kept on the app."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from zun_controller.admission import Admission
from zun_controller.admission.quota import QuotaAdmission
from zun_controller.api.auth import Principal, Tokens
from zun_controller.api.io import ContainerIO, ImageIO
from zun_controller.api.limits import ApiLimits, StreamSlots
from zun_controller.store.records import RecordStore

PREFIX = "/apis/zun.openstack.org/v1alpha1"


@dataclass
class ApiContext:
    store: RecordStore
    tokens: Tokens
    admission: Admission
    io: ContainerIO | None = None
    images: ImageIO | None = None
    limits: ApiLimits = field(default_factory=ApiLimits)
    #: open watches and log follows per token, at most `limits.streams_per_token` each
    slots: StreamSlots = field(init=False)
    #: running execs per token, at most `limits.execs_per_token` each
    exec_slots: StreamSlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = StreamSlots(self.limits.streams_per_token)
        self.exec_slots = StreamSlots(self.limits.execs_per_token, "execs")

    @property
    def quota(self) -> QuotaAdmission:
        return self.admission.quota


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.zun
    return ctx


async def principal(request: Request) -> Principal:
    """The caller, from its bearer token (401 without a valid one)."""
    return await context(request).tokens.authenticate(request.headers.get("authorization"))
