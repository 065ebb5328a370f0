"""`SwarmOrchestrator`: one Application as one Docker Swarm service on a manager's API.

The service is `zun_<project>_<app>` (swarm_spec.service_name), labelled with Zun's labels and
the revision, and found by those labels (so one made by an earlier version under
`zun-<project>-<app>` keeps its name); a service or network of that name that does not carry
the app's labels is a NameConflict, never patched or removed. See
swarm_spec for what the spec holds. Status comes from the service's tasks: a task is ready
when Swarm says `running` (with a healthcheck, Swarm only says so once it passes). A rollout
that Swarm paused (a new task failed or turned unhealthy) or that has been updating longer
than progressDeadlineSeconds is reported as failed; rolling back is the reconciler's call.

TLS material arrives as PEM text (from a Secret record); the SDK wants files, so they are
written to a private temporary directory (0700) that `close()` removes.

Registry credentials (`credentials(app, template)`, from the template's imagePullSecrets) go
with every create and update as `X-Registry-Auth`, as `docker service create
--with-registry-auth` sends them, so the nodes can pull; they are never part of the spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.auth
import docker.errors

from zun_controller.drivers.orchestrators.base import AppObservation, ClusterInfo, OwnedApp
from zun_controller.drivers.orchestrators.swarm_spec import (
    managed_fields,
    network_labels,
    network_name,
    owner_labels,
    patch,
)
from zun_controller.drivers.orchestrators.swarm_status import addresses, observation
from zun_controller.drivers.runtime.base import RegistryAuth, carries
from zun_controller.drivers.runtime.docker import tls_config, translate
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

T = TypeVar("T")
Api = Any  # docker.APIClient: the SDK ships no type information
CALL_TIMEOUT_S = 30.0
_OWNED = [f"{LABEL_MANAGED_BY}={MANAGED_BY}", f"{LABEL_KIND}=Application"]
_TLS_FILES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}


Credentials = Callable[[Application, AppTemplate], RegistryAuth | None]


def _auth_headers(auth: RegistryAuth | None) -> dict[str, str]:
    if auth is None:
        return {}
    config = {"username": auth.username, "password": auth.password, "serveraddress": auth.registry}
    return {"X-Registry-Auth": docker.auth.encode_header(config).decode()}


class SwarmOrchestrator:
    def __init__(
        self,
        name: str,
        endpoint: str,
        tls: Mapping[str, str] | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self._credentials = credentials
        self.name = name
        self.endpoint = endpoint
        self._tls_dir: Path | None = None
        self._tls = self._write_tls(tls) if tls else None
        self._api: Api = None
        self._networks: set[str] = set()

    def _write_tls(self, pem: Mapping[str, str]) -> dict[str, str]:
        self._tls_dir = Path(tempfile.mkdtemp(prefix="zun-swarm-tls-"))
        files = {}
        for role, key in _TLS_FILES.items():
            if key not in pem:
                raise PermanentError("InvalidConfig", f"tlsSecret: key {key!r} is missing")
            path = self._tls_dir / key
            path.touch(mode=0o600)
            path.write_text(pem[key])
            files[role] = str(path)
        return files

    def _client(self) -> Api:
        if self._api is None:
            self._api = docker.APIClient(
                base_url=self.endpoint,
                version="auto",
                timeout=CALL_TIMEOUT_S,
                tls=tls_config(self._tls),
            )
        return self._api

    async def _call(self, fn: Callable[[Api], T], what: str) -> T:
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S + 5):
                return await asyncio.to_thread(lambda: fn(self._client()))
        except Exception as exc:
            raise translate(exc, what) from exc

    async def _inspect(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._call(lambda api: api.inspect_service(name), f"inspect {name}")
        except NotFoundError:
            return None

    # -- the port

    async def info(self) -> ClusterInfo:
        info = await self._call(lambda api: api.info(), "info")
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise PermanentError("NotASwarmManager", f"{self.endpoint} is not a Swarm manager")
        nodes = await self._call(lambda api: api.nodes(), "nodes")
        res = [(n.get("Description") or {}).get("Resources") or {} for n in nodes]
        return ClusterInfo(
            version=str(info.get("ServerVersion", "")),
            nodes=len(nodes),
            cpus=sum(r.get("NanoCPUs", 0) for r in res) / 1e9,
            memory=sum(r.get("MemoryBytes", 0) for r in res),
        )

    async def _ensure_network(self, project: str) -> None:
        """The project's network, made if absent; one of that name that is not this project's
        (its labels say otherwise) is a NameConflict: no service is joined to it."""
        name = network_name(project)
        if name in self._networks:
            return
        labels = network_labels(project)
        found = await self._call(lambda api: api.networks(names=[name]), f"network {name}")
        found = [n for n in found if n.get("Name") == name]
        if not found:
            with contextlib.suppress(ConflictError):
                await self._call(
                    lambda api: api.create_network(
                        name, driver="bridge", scope="swarm", labels=labels
                    ),
                    f"create network {name}",
                )
        elif not all(carries(n.get("Labels") or {}, labels) for n in found):
            raise PermanentError("NameConflict", f"network {name} exists and is not ours")
        self._networks.add(name)

    async def _find(self, app: Application) -> dict[str, Any] | None:
        """The app's service: the one carrying its labels (uid included), whatever its name."""
        selector = [f"{k}={v}" for k, v in owner_labels(app).items()]
        found = await self._call(
            lambda api: api.services(filters={"label": selector}), f"services of {app.key}"
        )
        return found[0] if found else None

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        wanted = managed_fields(app, template, revision)
        await self._ensure_network(app.project or "")
        headers = _auth_headers(self._credentials(app, template) if self._credentials else None)
        current = await self._find(app)
        if current is None:
            await self._create(wanted, headers)
            return True
        spec = patch(current["Spec"], wanted)
        if spec is None:
            return False
        name, version = current["Spec"]["Name"], current["Version"]["Index"]
        await self._call(
            lambda api: api._result(
                api._post_json(
                    api._url("/services/{0}/update", current["ID"]),
                    data=spec,
                    params={"version": version},
                    headers=headers,
                ),
                json=True,
            ),
            f"update service {name}",
        )
        return True

    async def _create(self, wanted: dict[str, Any], headers: dict[str, str]) -> None:
        """Create the service; its name taken by a service that is not this app's (not found
        by its labels) is a NameConflict: that service is left as it is."""
        name = wanted["Name"]
        if await self._inspect(name) is not None:
            raise PermanentError(
                "NameConflict", f"Swarm service {name} exists and is not this Application's"
            )
        await self._call(
            lambda api: api._post_json(api._url("/services/create"), data=wanted, headers=headers),
            f"create service {name}",
        )

    async def observe(self, app: Application, revision: str) -> AppObservation:
        service = await self._find(app)
        if service is None:
            return AppObservation(exists=False)
        name = service["Spec"]["Name"]
        tasks = await self._call(
            lambda api: api.tasks(filters={"service": name, "desired-state": "running"}),
            f"tasks of {name}",
        )
        nodes = await self._call(lambda api: api.nodes(), "nodes")
        return observation(app, service, tasks, addresses(nodes), revision)

    async def delete(self, app: Application) -> bool:
        """Remove the app's service (found by its labels: another's is never touched); True
        once it and its task containers are gone."""
        service = await self._find(app)
        if service is not None:
            name = service["Spec"]["Name"]
            with contextlib.suppress(NotFoundError):
                await self._call(lambda api: api.remove_service(service["ID"]), f"remove {name}")
        selector = [f"{k}={v}" for k, v in owner_labels(app).items()]  # tasks carry them too
        left = await self._call(
            lambda api: api.containers(all=True, filters={"label": selector}),
            f"containers of {app.key}",
        )
        return not left

    async def list_owned(self) -> list[OwnedApp]:
        services = await self._call(lambda api: api.services(filters={"label": _OWNED}), "services")
        out = []
        for s in services:
            labels = s["Spec"].get("Labels") or {}
            out.append(
                OwnedApp(
                    labels.get(LABEL_PROJECT, ""),
                    labels.get(LABEL_NAME, ""),
                    labels.get(LABEL_UID, ""),
                )
            )
        return out

    async def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None
