"""`SwarmOrchestrator`: one Application as one Docker Swarm service on a manager's API.

The service is `zun-<project>-<app>`, labelled with Zun's labels and the revision; see
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
    network_name,
    patch,
    service_name,
)
from zun_controller.drivers.orchestrators.swarm_status import addresses, observation
from zun_controller.drivers.runtime.base import RegistryAuth
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
        self.name = name
        self._credentials = credentials
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
        name = network_name(project)
        if name in self._networks:
            return
        found = await self._call(lambda api: api.networks(names=[name]), f"network {name}")
        if not any(n.get("Name") == name for n in found):
            labels = {
                LABEL_MANAGED_BY: MANAGED_BY,
                LABEL_KIND: "Network",
                LABEL_PROJECT: project,
            }
            with contextlib.suppress(ConflictError):
                await self._call(
                    lambda api: api.create_network(
                        name, driver="bridge", scope="swarm", labels=labels
                    ),
                    f"create network {name}",
                )
        self._networks.add(name)

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        wanted = managed_fields(app, template, revision)
        await self._ensure_network(app.project or "")
        name = wanted["Name"]
        headers = _auth_headers(self._credentials(app, template) if self._credentials else None)
        current = await self._inspect(name)
        if current is None:
            await self._call(
                lambda api: api._post_json(
                    api._url("/services/create"), data=wanted, headers=headers
                ),
                f"create service {name}",
            )
            return True
        spec = patch(current["Spec"], wanted)
        if spec is None:
            return False
        version = current["Version"]["Index"]
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

    async def observe(self, app: Application, revision: str) -> AppObservation:
        name = service_name(app)
        service = await self._inspect(name)
        if service is None:
            return AppObservation(exists=False)
        tasks = await self._call(
            lambda api: api.tasks(filters={"service": name, "desired-state": "running"}),
            f"tasks of {name}",
        )
        nodes = await self._call(lambda api: api.nodes(), "nodes")
        return observation(app, service, tasks, addresses(nodes), revision)

    async def delete(self, app: Application) -> bool:
        name = service_name(app)
        service = await self._inspect(name)
        if service is not None:
            if service["Spec"].get("Labels", {}).get(LABEL_UID) != app.metadata.uid:
                return True  # not ours: never touch it
            with contextlib.suppress(NotFoundError):
                await self._call(lambda api: api.remove_service(service["ID"]), f"remove {name}")
        left = await self._call(
            lambda api: api.containers(
                all=True, filters={"label": f"com.docker.swarm.service.name={name}"}
            ),
            f"containers of {name}",
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
