"""A Zun controller process against a real etcd and real Docker engines, for e2e tests.

Tests write records straight into etcd (first-class, as the design allows), run
`zun-controller run` as a user would, and look at the world through the Docker SDK and HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker

from zun_controller.models.base import LABEL_MANAGED_BY, LABEL_PROJECT, MANAGED_BY, Resource
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

ZUN = str(Path(sys.executable).with_name("zun-controller"))


class Process:
    """A restartable child process (a controller, a bridge): start, SIGKILL, graceful stop."""

    def __init__(self, workdir: Path, label: str) -> None:
        self.workdir, self.label = workdir, label
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        #: variables added to the environment of the process
        self.env: dict[str, str] = {}

    def launch(self, cmd: list[str]) -> None:
        self.starts += 1
        log = (self.workdir / f"{self.label}-{self.starts}.log").open("wb")
        env = {**os.environ, "ZUN_LOG_LEVEL": "INFO", **self.env}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class ZunBed(Process):
    def __init__(self, etcd: EtcdServer, workdir: Path, projects: tuple[str, ...]) -> None:
        super().__init__(workdir, "controller")
        self.etcd, self.projects = etcd, projects
        self.kv = EtcdKV.from_url(etcd.url)
        self.store = RecordStore(self.kv)

    #: the admin setting the GitOps tests need: their repositories are local (file://)
    git_schemes = "https,ssh,file"

    def start(self) -> None:
        self.env["ZUN_GIT_SCHEMES"] = self.git_schemes
        self.launch([ZUN, "run", "--etcd", self.etcd.url, "--health-port", "0", "--lease-ttl", "3"])

    def log_tail(self) -> str:
        logs = sorted(self.workdir.glob("controller-*.log"))
        return logs[-1].read_text()[-4000:] if logs else ""

    async def apply(self, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> Resource:
        metadata: dict[str, Any] = {"name": name, **meta}
        return await self.store.create(
            parse(
                {
                    "apiVersion": "zun.openstack.org/v1alpha1",
                    "kind": kind,
                    "metadata": metadata,
                    "spec": spec,
                }
            )
        )

    async def host(self, name: str, endpoint: str, **spec: Any) -> None:
        await self.apply("Host", name, {"endpoint": endpoint, **spec})

    async def container(self, name: str, project: str) -> Container:
        return await self.store.get(Container, name, project)

    async def edit(self, name: str, project: str, **spec: Any) -> None:
        obj = await self.container(name, project)
        obj.spec = type(obj.spec).model_validate({**obj.spec.model_dump(), **spec})
        await self.store.update(obj)

    async def until(self, check: Callable[[], Any], within: float = 60.0, what: str = "") -> Any:
        """Poll an async or sync check until it returns something truthy."""
        deadline = time.monotonic() + within
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {within}s: {what}\n{self.log_tail()}")
            await asyncio.sleep(0.2)

    async def phase(self, name: str, project: str, phase: str, within: float = 60.0) -> Container:
        async def reached() -> Container | None:
            obj = await self.container(name, project)
            return obj if obj.status.phase == phase else None

        return await self.until(reached, within, f"{project}/{name} phase {phase}")  # type: ignore[no-any-return]

    async def close(self) -> None:
        self.stop()
        await self.kv.close()


def clean_engine(client: docker.DockerClient, projects: tuple[str, ...]) -> None:
    """Remove what Zun made for these projects (containers, then networks and volumes)."""
    for project in projects:
        labels = [f"{LABEL_MANAGED_BY}={MANAGED_BY}", f"{LABEL_PROJECT}={project}"]
        for c in client.containers.list(ignore_removed=True, all=True, filters={"label": labels}):
            c.remove(force=True)
        for n in client.networks.list(filters={"label": labels}):
            n.remove()
        for v in client.volumes.list(filters={"label": labels}):
            v.remove(force=True)
