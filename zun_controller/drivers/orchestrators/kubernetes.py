"""`KubernetesOrchestrator`: the `Orchestrator` port on a Kubernetes cluster.

An Application becomes a Namespace `zun-<project>` labelled with the project (kept when the
app goes: other apps of the project, or the user's own objects, may live there), a Deployment
and, when the spec asks for one, a Service, both named after the Application
(`kubernetes_objects.py`). A project never lands in a namespace it does not own (`default`,
`kube-system`, another tenant's): a `zun-<project>` without the project's labels is a
NameConflict. A namespace named after the project itself, as earlier versions made it, is
kept for that project's apps while it carries the project's labels.

`apply` server-side applies the whole desired manifest (field manager `zun-controller`,
forced) every time it is called, so a Deployment or Service scaled, edited or deleted by hand
is put back by the next apply; unchanged objects are not written (the API server's apply is a
no-op then). It says it changed something when an object was created or deleted, when the
Deployment's `metadata.generation` moved (only a spec change moves it), or when the Service's
spec differs from what was read. Objects of the same name that Zun did not make are never
taken over: `PermanentError("NameConflict")`.

`observe` reads the Deployment's status and conditions (`kubernetes_status.py`); Kubernetes
only *reports* a rollout that passed its deadline (Progressing=False, ProgressDeadlineExceeded):
deciding to roll back is the Application reconciler's, which applies the previous template.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from kubernetes import client as kube_models

from zun_controller.drivers.orchestrators.base import AppObservation, ClusterInfo, OwnedApp
from zun_controller.drivers.orchestrators.kubernetes_client import KubeConnection, Manifest
from zun_controller.drivers.orchestrators.kubernetes_objects import (
    KIND,
    deployment,
    in_namespace,
    is_ours,
    legacy_namespace,
    namespace_is_ours,
    namespace_labels,
    namespace_of,
    project_of,
    service,
)
from zun_controller.drivers.orchestrators.kubernetes_pull import (
    pull_secret,
    pull_secret_name,
    with_pull_secret,
)
from zun_controller.drivers.orchestrators.kubernetes_status import (
    cluster_info,
    endpoints,
    observation,
)
from zun_controller.drivers.runtime.base import RegistryAuth
from zun_controller.errors import ConflictError, NotFoundError, PermanentError
from zun_controller.models.application import Application, AppTemplate
from zun_controller.models.base import (
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_UID,
    MANAGED_BY,
)

OWNED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_KIND}={KIND}"


def _generation(obj: Manifest | None) -> object:
    """metadata.generation, None when there is no object (so a create differs)."""
    return None if obj is None else (obj.get("metadata") or {}).get("generation")


Credentials = Callable[[Application, AppTemplate], RegistryAuth | None]


class KubernetesOrchestrator:
    """Applications as Deployments and Services on one cluster, reached by a kubeconfig."""

    def __init__(
        self,
        name: str,
        kubeconfig: str,
        *,
        timeout: float = 20.0,
        credentials: Credentials | None = None,
    ) -> None:
        self.name = name
        self._credentials = credentials
        self._kube = KubeConnection(name, kubeconfig, timeout=timeout)
        #: project -> the namespace its apps are in, once seen or made
        self._namespaces: dict[str, str] = {}
        #: `namespace/name` of pull Secrets known not to exist (no credentials named)
        self._no_secret: set[str] = set()

    # -- reading

    async def _deployment(self, app: Application, ns: str) -> Manifest | None:
        kube = self._kube
        return await kube.get(
            lambda: kube.apps.read_namespaced_deployment(app.name, ns, **kube.options()),
            f"Deployment {ns}/{app.name}",
        )

    async def _service(self, app: Application, ns: str) -> Manifest | None:
        kube = self._kube
        return await kube.get(
            lambda: kube.core.read_namespaced_service(app.name, ns, **kube.options()),
            f"Service {ns}/{app.name}",
        )

    @staticmethod
    def _ours(obj: Manifest | None, app: Application, ns: str) -> Manifest | None:
        """The object if Zun made it for this app; NameConflict if someone else did."""
        if obj is not None and not is_ours(obj, app):
            kind = obj.get("kind", "object")
            raise PermanentError(
                "NameConflict", f"{kind} {ns}/{app.name} exists and was not made by Zun"
            )
        return obj

    async def info(self) -> ClusterInfo:
        kube = self._kube
        version = await kube.call(lambda: kube.version.get_code(**kube.options()), "version")
        nodes = await kube.call(lambda: kube.core.list_node(**kube.options()), "nodes")
        return cluster_info(version, nodes)

    async def observe(self, app: Application, revision: str) -> AppObservation:
        ns = await self._namespace(app, create=False)
        deploy = await self._deployment(app, ns) if ns is not None else None
        if ns is None or deploy is None or not is_ours(deploy, app):
            return AppObservation(exists=False, message="no Deployment")
        svc = await self._service(app, ns)
        addresses = endpoints(svc if svc is not None and is_ours(svc, app) else None)
        return observation(deploy, revision, addresses)

    async def list_owned(self) -> list[OwnedApp]:
        kube = self._kube
        found = await kube.call(
            lambda: kube.apps.list_deployment_for_all_namespaces(
                label_selector=OWNED_SELECTOR, **kube.options()
            ),
            "Deployments",
        )
        labels = [d["metadata"].get("labels") or {} for d in found.get("items") or ()]
        return [
            OwnedApp(project=lb[LABEL_PROJECT], name=lb[LABEL_NAME], uid=lb.get(LABEL_UID, ""))
            for lb in labels
            if LABEL_PROJECT in lb and LABEL_NAME in lb
        ]

    # -- namespaces

    async def _read_namespace(self, name: str) -> Manifest | None:
        kube = self._kube
        return await kube.get(
            lambda: kube.core.read_namespace(name, **kube.options()), f"Namespace {name}"
        )

    async def _namespace(self, app: Application, *, create: bool) -> str | None:
        """The project's namespace: the unprefixed one an earlier version made for it (it
        carries the project's labels: its apps keep running there), else `zun-<project>`,
        made if missing when `create`. A `zun-<project>` not carrying the project's labels is
        someone else's: NameConflict when `create`, nothing is written into it; when only
        looking (observe, delete), None: nothing of ours is there. Never edited."""
        project = project_of(app)
        if project in self._namespaces:
            return self._namespaces[project]
        legacy = await self._read_namespace(legacy_namespace(app))
        if legacy is not None and namespace_is_ours(legacy, project):
            return self._known(project, legacy, legacy_namespace(app), create)
        name = namespace_of(app)
        found = await self._read_namespace(name)
        if found is None:
            if create:
                await self._create_namespace(project, name)
                self._namespaces[project] = name
            return name
        if not namespace_is_ours(found, project):
            if not create:
                return None
            raise PermanentError(
                "NameConflict", f"Namespace {name} exists and is not project {project}'s"
            )
        return self._known(project, found, name, create)

    def _known(self, project: str, found: Manifest, name: str, create: bool) -> str:
        """`name`, remembered; a namespace on its way out is a ConflictError to write into."""
        if (found.get("status") or {}).get("phase") == "Terminating":
            if create:
                raise ConflictError(f"Namespace {name} is being deleted; try again later")
            return name
        self._namespaces[project] = name
        return name

    async def _create_namespace(self, project: str, name: str) -> None:
        kube = self._kube
        body = kube_models.V1Namespace(
            metadata=kube_models.V1ObjectMeta(name=name, labels=namespace_labels(project))
        )
        with contextlib.suppress(ConflictError):  # made meanwhile
            await kube.call(
                lambda: kube.core.create_namespace(body, **kube.options()),
                f"create Namespace {name}",
            )

    # -- writing

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        project = project_of(app)
        wanted_deploy = deployment(app, template, revision)  # spec errors before any call
        spec = app.spec.service
        wanted_svc = service(app, spec) if spec is not None and spec.ports else None
        auth = self._credentials(app, template) if self._credentials else None
        if auth is not None:
            wanted_deploy = with_pull_secret(wanted_deploy, app)
        try:
            return await self._apply_all(app, wanted_deploy, wanted_svc, auth)
        except NotFoundError:  # the namespace was deleted behind our back: make it again
            self._namespaces.pop(project, None)
            await self._apply_all(app, wanted_deploy, wanted_svc, auth)
            return True
        except ConflictError:  # e.g. the namespace is being deleted: look again next time
            self._namespaces.pop(project, None)
            raise

    async def _apply_all(
        self,
        app: Application,
        wanted_deploy: Manifest,
        wanted_svc: Manifest | None,
        auth: RegistryAuth | None = None,
    ) -> bool:
        ns = await self._namespace(app, create=True)
        assert ns is not None  # made, or a NameConflict raised
        await self._sync_pull_secret(app, ns, auth)
        kube = self._kube
        # Both are checked before anything is written: no half-applied app on a NameConflict.
        current_deploy, current_svc = await asyncio.gather(
            self._deployment(app, ns), self._service(app, ns)
        )
        self._ours(current_deploy, app, ns)
        self._ours(current_svc, app, ns)
        body = in_namespace(wanted_deploy, ns)
        applied_deploy = await kube.call(
            lambda: kube.apps.patch_namespaced_deployment(
                app.name, ns, body, **kube.apply_options()
            ),
            f"apply Deployment {ns}/{app.name}",
        )
        changed = _generation(current_deploy) != _generation(applied_deploy)
        if wanted_svc is not None:
            svc_body = in_namespace(wanted_svc, ns)
            applied_svc = await kube.call(
                lambda: kube.core.patch_namespaced_service(
                    app.name, ns, svc_body, **kube.apply_options()
                ),
                f"apply Service {ns}/{app.name}",
            )
            changed |= current_svc is None or current_svc.get("spec") != applied_svc.get("spec")
        elif current_svc is not None:
            await self._delete_service(app, ns)
            changed = True
        return changed

    async def _sync_pull_secret(self, app: Application, ns: str, auth: RegistryAuth | None) -> None:
        """The app's pull Secret applied when it has credentials, deleted when it has none."""
        kube, name = self._kube, pull_secret_name(app)
        known = f"{ns}/{name}"
        if auth is None:
            if known not in self._no_secret:  # looked at once per app, then known absent
                await self._delete_pull_secret(app, ns)
                self._no_secret.add(known)
            return
        await kube.call(
            lambda: kube.core.patch_namespaced_secret(
                name, ns, in_namespace(pull_secret(app, auth), ns), **kube.apply_options()
            ),
            f"apply Secret {ns}/{name}",
        )
        self._no_secret.discard(known)

    async def _delete_pull_secret(self, app: Application, ns: str) -> None:
        kube, name = self._kube, pull_secret_name(app)
        found = await kube.get(
            lambda: kube.core.read_namespaced_secret(name, ns, **kube.options()),
            f"Secret {ns}/{name}",
        )
        if found is not None and is_ours(found, app):
            await self._delete(
                lambda: kube.core.delete_namespaced_secret(name, ns, **kube.options()),
                f"delete Secret {ns}/{name}",
            )

    async def _delete_service(self, app: Application, ns: str) -> None:
        kube = self._kube
        await self._delete(
            lambda: kube.core.delete_namespaced_service(app.name, ns, **kube.options()),
            f"delete Service {ns}/{app.name}",
        )

    async def _delete(self, fn: Any, what: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self._kube.call(fn, what)

    async def delete(self, app: Application) -> bool:
        """Delete the Deployment (foreground: its ReplicaSets and Pods first) and the Service;
        True once neither exists. The Namespace is kept."""
        kube = self._kube
        ns = await self._namespace(app, create=False)
        if ns is None:
            return True  # the project has no namespace of its own: nothing of ours exists
        deploy = await self._deployment(app, ns)
        deleting = deploy is not None and deploy["metadata"].get("deletionTimestamp")
        if deploy is not None and is_ours(deploy, app) and not deleting:
            await self._delete(
                lambda: kube.apps.delete_namespaced_deployment(
                    app.name, ns, propagation_policy="Foreground", **kube.options()
                ),
                f"delete Deployment {ns}/{app.name}",
            )
        svc = await self._service(app, ns)
        if svc is not None and is_ours(svc, app):
            await self._delete_service(app, ns)
        await self._delete_pull_secret(app, ns)
        deploy, svc = await self._deployment(app, ns), await self._service(app, ns)
        return not any(o is not None and is_ours(o, app) for o in (deploy, svc))

    async def close(self) -> None:
        await self._kube.close()
