"""`KubernetesOrchestrator`: the `Orchestrator` port on a Kubernetes cluster.

An Application becomes a Namespace named after its project (kept when the app goes: other
apps of the project, or the user's own objects, may live there), a Deployment and, when the
spec asks for one, a Service, both named after the Application (`kubernetes_objects.py`).

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
    is_ours,
    namespace_labels,
    namespace_of,
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
        self._namespaces: set[str] = set()
        #: `namespace/name` of pull Secrets known not to exist (no credentials named)
        self._no_secret: set[str] = set()

    # -- reading

    async def _deployment(self, app: Application) -> Manifest | None:
        kube, ns = self._kube, namespace_of(app)
        return await kube.get(
            lambda: kube.apps.read_namespaced_deployment(app.name, ns, **kube.options()),
            f"Deployment {ns}/{app.name}",
        )

    async def _service(self, app: Application) -> Manifest | None:
        kube, ns = self._kube, namespace_of(app)
        return await kube.get(
            lambda: kube.core.read_namespaced_service(app.name, ns, **kube.options()),
            f"Service {ns}/{app.name}",
        )

    @staticmethod
    def _ours(obj: Manifest | None, app: Application) -> Manifest | None:
        """The object if Zun made it for this app; NameConflict if someone else did."""
        if obj is not None and not is_ours(obj, app):
            kind, ns = obj.get("kind", "object"), namespace_of(app)
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
        deploy = await self._deployment(app)
        if deploy is None or not is_ours(deploy, app):
            return AppObservation(exists=False, message="no Deployment")
        svc = await self._service(app)
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

    # -- writing

    async def _ensure_namespace(self, project: str) -> None:
        """Create the project's namespace if missing; an existing one is used, never edited."""
        if project in self._namespaces:
            return
        kube = self._kube
        found = await kube.get(
            lambda: kube.core.read_namespace(project, **kube.options()), f"Namespace {project}"
        )
        if found is None:
            body = kube_models.V1Namespace(
                metadata=kube_models.V1ObjectMeta(name=project, labels=namespace_labels(project))
            )
            with contextlib.suppress(ConflictError):  # made meanwhile
                await kube.call(
                    lambda: kube.core.create_namespace(body, **kube.options()),
                    f"create Namespace {project}",
                )
        elif (found.get("status") or {}).get("phase") == "Terminating":
            raise ConflictError(f"Namespace {project} is being deleted; try again later")
        self._namespaces.add(project)

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        ns = namespace_of(app)
        wanted_deploy = deployment(app, template, revision)  # spec errors before any call
        auth = self._credentials(app, template) if self._credentials else None
        if auth is not None:
            wanted_deploy = with_pull_secret(wanted_deploy, app)
        spec = app.spec.service
        wanted_svc = service(app, spec) if spec is not None and spec.ports else None
        try:
            return await self._apply_all(app, ns, wanted_deploy, wanted_svc, auth)
        except NotFoundError:  # the namespace was deleted behind our back: make it again
            self._namespaces.discard(ns)
            await self._apply_all(app, ns, wanted_deploy, wanted_svc, auth)
            return True
        except ConflictError:  # e.g. the namespace is being deleted: look again next time
            self._namespaces.discard(ns)
            raise

    async def _apply_all(
        self,
        app: Application,
        ns: str,
        wanted_deploy: Manifest,
        wanted_svc: Manifest | None,
        auth: RegistryAuth | None = None,
    ) -> bool:
        await self._ensure_namespace(ns)
        await self._sync_pull_secret(app, ns, auth)
        kube = self._kube
        # Both are checked before anything is written: no half-applied app on a NameConflict.
        current_deploy, current_svc = await asyncio.gather(
            self._deployment(app), self._service(app)
        )
        self._ours(current_deploy, app)
        self._ours(current_svc, app)
        applied_deploy = await kube.call(
            lambda: kube.apps.patch_namespaced_deployment(
                app.name, ns, wanted_deploy, **kube.apply_options()
            ),
            f"apply Deployment {ns}/{app.name}",
        )
        changed = _generation(current_deploy) != _generation(applied_deploy)
        if wanted_svc is not None:
            applied_svc = await kube.call(
                lambda: kube.core.patch_namespaced_service(
                    app.name, ns, wanted_svc, **kube.apply_options()
                ),
                f"apply Service {ns}/{app.name}",
            )
            changed |= current_svc is None or current_svc.get("spec") != applied_svc.get("spec")
        elif current_svc is not None:
            await self._delete_service(app)
            changed = True
        return changed

    async def _sync_pull_secret(self, app: Application, ns: str, auth: RegistryAuth | None) -> None:
        """The app's pull Secret applied when it has credentials, deleted when it has none."""
        kube, name = self._kube, pull_secret_name(app)
        known = f"{ns}/{name}"
        if auth is None:
            if known not in self._no_secret:  # looked at once per app, then known absent
                await self._delete_pull_secret(app)
                self._no_secret.add(known)
            return
        await kube.call(
            lambda: kube.core.patch_namespaced_secret(
                name, ns, pull_secret(app, auth), **kube.apply_options()
            ),
            f"apply Secret {ns}/{name}",
        )
        self._no_secret.discard(known)

    async def _delete_pull_secret(self, app: Application) -> None:
        kube, ns, name = self._kube, namespace_of(app), pull_secret_name(app)
        found = await kube.get(
            lambda: kube.core.read_namespaced_secret(name, ns, **kube.options()),
            f"Secret {ns}/{name}",
        )
        if found is not None and is_ours(found, app):
            await self._delete(
                lambda: kube.core.delete_namespaced_secret(name, ns, **kube.options()),
                f"delete Secret {ns}/{name}",
            )

    async def _delete_service(self, app: Application) -> None:
        kube, ns = self._kube, namespace_of(app)
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
        kube, ns = self._kube, namespace_of(app)
        deploy = await self._deployment(app)
        deleting = deploy is not None and deploy["metadata"].get("deletionTimestamp")
        if deploy is not None and is_ours(deploy, app) and not deleting:
            await self._delete(
                lambda: kube.apps.delete_namespaced_deployment(
                    app.name, ns, propagation_policy="Foreground", **kube.options()
                ),
                f"delete Deployment {ns}/{app.name}",
            )
        svc = await self._service(app)
        if svc is not None and is_ours(svc, app):
            await self._delete_service(app)
        await self._delete_pull_secret(app)
        deploy, svc = await self._deployment(app), await self._service(app)
        return not any(o is not None and is_ours(o, app) for o in (deploy, svc))

    async def close(self) -> None:
        await self._kube.close()
