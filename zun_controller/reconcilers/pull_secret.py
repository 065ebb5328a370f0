"""PullSecrets in use are held on delete (the in-use rule, reconcilers/inuse.py).

A PullSecret's users are the records of its project that name it in `spec.imagePullSecrets`:
Containers, and Applications whose template's containers do. A Container an Application made
(its controlling owner) is not named beside that Application when the Application names the
PullSecret too: the user acts on the Application. While any user is left a deleting PullSecret
keeps its finalizer and shows `InUse` (`used by Application demo/shop; Container demo/web`);
once none is, it goes. `zunctl delete --force` removes the finalizer, as for any kind.

`pull_secret_users` is a pure function of the records, so the Zun v1 API can refuse a delete
with the same users the controller would hold it for.
"""

from __future__ import annotations

from collections.abc import Iterable

from zun_controller.engine.client import Records
from zun_controller.engine.reconciler import Result
from zun_controller.models.application import Application
from zun_controller.models.container import Container
from zun_controller.models.image import PullSecretRef
from zun_controller.models.pullsecret import PullSecret
from zun_controller.reconcilers.inuse import InUseGuard, User


def _names(refs: Iterable[PullSecretRef], name: str) -> bool:
    return any(ref.name == name for ref in refs)


def app_names(app: Application, name: str) -> bool:
    """Whether the Application's template names the PullSecret `name`."""
    return any(_names(c.image_pull_secrets, name) for c in app.spec.template.containers)


def pull_secret_users(
    name: str, project: str | None, containers: Iterable[Container], apps: Iterable[Application]
) -> list[User]:
    """The records of `project` naming the PullSecret `name` (see the module)."""
    using_apps = [a for a in apps if a.project == project and app_names(a, name)]
    app_uids = {a.metadata.uid for a in using_apps if a.metadata.uid}
    using = [
        c
        for c in containers
        if c.project == project
        and _names(c.spec.image_pull_secrets, name)
        and not any(r.uid in app_uids for r in c.metadata.owner_references)
    ]
    return [User.of(obj) for obj in (*using, *using_apps)]


class PullSecretReconciler:
    """PullSecrets have nothing outside: only the in-use rule applies to them. Applications
    count as users once `count_applications` is given their records (the Application
    controllers are wired after the runtime's)."""

    def __init__(self, secrets: Records[PullSecret], containers: Records[Container]) -> None:
        self.secrets, self.containers = secrets, containers
        self.apps: Records[Application] | None = None
        self.guard = InUseGuard(secrets, self.users)

    def count_applications(self, apps: Records[Application]) -> None:
        self.apps = apps

    def users(self, secret: PullSecret) -> list[User]:
        project = secret.project
        containers = self.containers.all(lambda c: c.project == project)
        apps = self.apps.all(lambda a: a.project == project) if self.apps is not None else ()
        return pull_secret_users(secret.name, project, containers, apps)

    async def reconcile(self, key: str) -> Result:
        return await self.guard.reconcile(key)
