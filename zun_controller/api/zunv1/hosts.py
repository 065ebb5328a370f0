"""`/v1/hosts` (admin only, as Zun's policy) from Host records, and `/v1/quotas/{project_id}`
on the Quota kind: containers, cpu (cores) and memory (MiB); -1 is no limit; `?usages=true`
gives `{"limit", "in_use"}` per resource. PUT (admin) writes the Quota record; DELETE (admin)
removes it (no limits)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from zun_controller.api.context import ApiContext
from zun_controller.api.crud import writer_of
from zun_controller.api.zunv1.auth import Caller, caller
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.errors import NotFoundError
from zun_controller.models.base import ObjectMeta
from zun_controller.models.host import Host
from zun_controller.models.project import Quota, QuotaLimits, QuotaSpec

router = APIRouter()
Who = Annotated[Caller, Depends(caller)]
MIB = 2**20


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.zun
    return ctx


def host_view(host: Host) -> dict[str, Any]:
    st = host.status
    return {
        "uuid": host.metadata.uid,
        "hostname": host.name,
        "mem_total": st.capacity.memory // MIB,
        "mem_used": st.allocated.memory // MIB,
        "cpus": st.capacity.cpu,
        "cpu_used": st.allocated.cpu,
        "total_containers": st.containers,
        "runtimes": st.runtimes,
        "labels": dict(host.metadata.labels),
        "os_type": "linux",
        "enable_cpu_pinning": False,
        "disk_quota_supported": False,
        "status": "up" if host.status.is_true("Ready") else "down",
        "version": st.version,
    }


@router.get("/hosts")
async def hosts(request: Request, who: Who) -> dict[str, Any]:
    who.check_admin("container:host:get_all")
    found = (await _ctx(request).store.list(Host)).items
    return {"hosts": [host_view(h) for h in found], "next": None}


@router.get("/hosts/{ident}")
async def host(request: Request, who: Who, ident: str) -> dict[str, Any]:
    who.check_admin("container:host:get")
    for found in (await _ctx(request).store.list(Host)).items:
        if ident in (found.metadata.uid, found.name):
            return host_view(found)
    raise ZunV1Error(404, f"ComputeNode {ident} could not be found.")


def _limits(limits: QuotaLimits) -> dict[str, Any]:
    def unset(value: Any) -> Any:
        return -1 if value is None else value

    memory = None if limits.memory is None else limits.memory // MIB
    return {"containers": unset(limits.containers), "cpu": unset(limits.cpu),
            "memory": unset(memory), "disk": -1}  # fmt: skip


async def _quota(ctx: ApiContext, project: str) -> Quota | None:
    try:
        return await ctx.store.get(Quota, project)
    except NotFoundError:
        return None


@router.get("/quotas/{project_id}")
async def quota(request: Request, who: Who, project_id: str, usages: str = "false") -> Any:
    if not who.principal.can_read(project_id):
        raise ZunV1Error(403, f"Policy doesn't allow reading quotas of {project_id!r}.")
    ctx = _ctx(request)
    found = await _quota(ctx, project_id)
    limits = _limits(found.spec.limits if found else QuotaLimits())
    if usages.lower() not in ("true", "1"):
        return limits
    used, _ = await ctx.quota.usage(project_id)
    in_use = {"containers": used.containers, "cpu": used.cpu, "memory": used.memory // MIB}
    return {k: {"limit": v, "in_use": in_use.get(k, 0)} for k, v in limits.items()}


def _new_limits(body: Any, old: QuotaLimits) -> QuotaLimits:
    if not isinstance(body, dict) or set(body) - {"containers", "cpu", "memory", "disk"}:
        raise ZunV1Error(400, "A quota body takes containers, cpu, memory (MiB) and disk")
    data = old.model_dump()
    for key in ("containers", "cpu", "memory"):
        if key in body:
            value = body[key]
            none = value is None or value == -1
            data[key] = None if none else (int(value) * MIB if key == "memory" else value)
    return QuotaLimits.model_validate(data)


@router.put("/quotas/{project_id}")
async def set_quota(request: Request, who: Who, project_id: str) -> Any:
    who.check_admin("container:quota:update")
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise ZunV1Error(400, f"The request body is not JSON: {exc}") from None
    ctx = _ctx(request)
    old = await _quota(ctx, project_id)
    if old is None:
        new = Quota(metadata=ObjectMeta(name=project_id), spec=QuotaSpec())
        new.spec.limits = _new_limits(body, QuotaLimits())
        saved = await ctx.admission.create(new, writer_of(who.principal))
    else:
        new = old.model_copy(deep=True)
        new.spec.limits = _new_limits(body, old.spec.limits)
        saved = await ctx.admission.update(new, old, writer_of(who.principal))
    await ctx.quota.recompute(project_id)
    return _limits(saved.spec.limits)


@router.delete("/quotas/{project_id}", status_code=204)
async def delete_quota(request: Request, who: Who, project_id: str) -> Response:
    who.check_admin("container:quota:delete")
    ctx = _ctx(request)
    if await _quota(ctx, project_id) is not None:
        await ctx.store.delete(Quota, project_id)
    return Response(status_code=204)
