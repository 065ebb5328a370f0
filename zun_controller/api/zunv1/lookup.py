"""Finding a container by what Zun clients pass: its uuid (the record's uid) or its name, in
the caller's project (or, for admins with `all_projects`, in any); and writing a change to its
spec with a bounded retry when the controller wrote the record meanwhile."""

from __future__ import annotations

from collections.abc import Callable

from zun_controller.api.context import ApiContext
from zun_controller.api.crud import writer_of
from zun_controller.api.zunv1.auth import Caller
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.api.zunv1.view import zun_name
from zun_controller.errors import ConflictError
from zun_controller.models.container import Container

ATTEMPTS = 5


async def visible(ctx: ApiContext, caller: Caller, all_projects: bool = False) -> list[Container]:
    """The containers the caller sees: its project's, or every project's for an admin."""
    if all_projects:
        caller.check_admin("list containers in all projects")
        return (await ctx.store.list(Container, None)).items
    return (await ctx.store.list(Container, caller.project)).items


async def find(
    ctx: ApiContext, caller: Caller, ident: str, all_projects: bool = False
) -> Container:
    """The container `ident` names (uuid first, then name); 404 if none, 409 if ambiguous."""
    found = await visible(ctx, caller, all_projects)
    by_uuid = [c for c in found if c.metadata.uid == ident]
    if by_uuid:
        return by_uuid[0]
    by_name = [c for c in found if zun_name(c) == ident]
    if len(by_name) > 1:
        raise ZunV1Error(
            409,
            f"Multiple containers exist with same name. Please use the container uuid instead "
            f"of {ident!r}.",
            code="zun.common.exception.Conflict",
        )
    if not by_name:
        raise ZunV1Error(
            404,
            f"Container {ident} could not be found.",
            code="zun.common.exception.ContainerNotFound",
        )
    return by_name[0]


async def change(
    ctx: ApiContext, caller: Caller, ident: str, edit: Callable[[Container], None]
) -> Container:
    """Apply `edit` to the container's record and write it (admitted), retrying when the
    controller wrote it between our read and our write."""
    caller.check_write()
    for attempt in range(ATTEMPTS):
        old = await find(ctx, caller, ident)
        new = old.model_copy(deep=True)
        edit(new)
        try:
            return await ctx.admission.update(new, old, writer_of(caller.principal))
        except ConflictError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
