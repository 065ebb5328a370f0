"""Who may do what: the role and project checks of every request, in one place.

- Project-scoped kinds: readers read and members also write in their own projects; outside
  them every request is 403 (a list across projects shows only the caller's projects).
- Cluster-scoped kinds: admins only, except that a member or reader may read the `Project` and
  the `Quota` named after one of its projects.
- Admin-only fields (`spec.runtime`, ...) are admission's (`zun_controller.admission`).
- `PullSecret`s and `GitSecret`s hold passwords and keys: members write and read them in their
  own projects, readers do not even read them.
"""

from __future__ import annotations

from zun_controller.api.auth import Principal
from zun_controller.api.errors import ApiError
from zun_controller.models.base import Resource, Scope
from zun_controller.models.gitsecret import GitSecret
from zun_controller.models.project import Project, Quota
from zun_controller.models.pullsecret import PullSecret

_OWN_CLUSTER_KINDS = (Project, Quota)
#: project-scoped kinds that only the project's writers may read
_WRITERS_ONLY = (PullSecret, GitSecret)


def check_project(who: Principal, project: str, *, write: bool) -> None:
    allowed = who.can_write(project) if write else who.can_read(project)
    if not allowed:
        verb = "write" if write else "read"
        raise ApiError(
            403, f"token {who.name!r} ({who.role}) may not {verb} in project {project!r}"
        )


def check_cluster(who: Principal, cls: type[Resource], name: str | None, *, write: bool) -> None:
    """A request on a cluster-scoped kind (name None: a list, filtered by `visible`)."""
    if who.admin:
        return
    if not write and cls in _OWN_CLUSTER_KINDS and (name is None or name in who.projects):
        return
    what = f"{cls.KIND.plural}/{name}" if name else cls.KIND.plural
    raise ApiError(403, f"token {who.name!r} ({who.role}) may not access {what}")


def check(
    who: Principal, cls: type[Resource], project: str | None, name: str | None, *, write: bool
) -> None:
    if cls.KIND.scope is Scope.PROJECT and project is not None:
        check_project(who, project, write=write or cls in _WRITERS_ONLY)
    elif cls.KIND.scope is Scope.CLUSTER:
        check_cluster(who, cls, name, write=write)
    elif write or not (who.admin or who.projects):
        raise ApiError(403, f"token {who.name!r} may not access {cls.KIND.plural} across projects")


def visible(who: Principal, obj: Resource) -> bool:
    """Whether a listed record may be shown to the caller."""
    if who.admin:
        return True
    if isinstance(obj, _WRITERS_ONLY):
        return who.can_write(obj.project or "")
    if obj.KIND.scope is Scope.PROJECT:
        return obj.project in who.projects
    return obj.name in who.projects
