"""The world under test: its own etcd, its own Docker engine (an extra dockerd, so restarting it
never touches anything else on the machine), two controller replicas competing for the lease,
each writing an action log, and the REST API. Swarm Applications go to the main engine as a
single-node Swarm (a second Swarm cannot run beside it); their services carry the run's project,
the engine's name, so runs on different engines never see each other's."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker

from zun_controller.models.base import LABEL_PROJECT
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

ROOT = Path(__file__).resolve().parents[2]
DOCKERD = ROOT / "hack" / "dockerd.sh"
IMAGES = ROOT / "hack" / "images.sh"
ZUN = str(Path(sys.executable).with_name("zun-controller"))
ENGINE = "chaos"
MAIN_ENGINE = "unix:///var/run/docker.sock"


def sh(*cmd: str, env: dict[str, str] | None = None, limit: float = 300) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=limit, env=env)
    return done.stdout.strip()


@dataclass
class Replica:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0


@dataclass
class World:
    workdir: Path
    #: the extra Docker engine this run owns (hack/dockerd.sh start NAME); one run per engine
    engine: str = ENGINE
    etcd: EtcdServer = field(init=False)
    engine_url: str = ""
    replicas: dict[str, Replica] = field(default_factory=dict)
    api: Replica = field(default_factory=lambda: Replica("api"))
    api_url: str = ""
    token: str = ""
    _lock: IO[str] | None = None

    def __post_init__(self) -> None:
        self.etcd = EtcdServer(self.workdir / "etcd")

    @property
    def project(self) -> str:
        return self.engine

    @property
    def action_log(self) -> Path:
        return self.workdir / "actions.jsonl"

    def start(self) -> None:
        self._lock = (Path("/run/lock") / f"zun-chaos-{self.engine}.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another chaos run uses engine {self.engine}; use --engine"
            ) from None
        self.etcd.start()
        sh(
            "bash", str(DOCKERD), "stop", self.engine
        )  # a clean engine: nothing left from earlier runs
        self.engine_url = sh("bash", str(DOCKERD), "start", self.engine)
        sh("bash", str(IMAGES), env={**os.environ, "DOCKER_HOST": self.engine_url})
        self._swarm_ready()
        for name in ("a", "b"):
            self.replicas[name] = Replica(name)
            self.start_replica(name)
        self.token = sh(ZUN, "token", "--name", "chaos", "--role", "admin", "--etcd", self.etcd.url)
        self.api_url = f"http://127.0.0.1:{_free_port()}"
        self.start_api()

    def _swarm_ready(self) -> None:
        """The main engine as a Swarm manager, with nothing left of this project's services."""
        main = self.main_docker()
        try:
            if main.info()["Swarm"]["LocalNodeState"] != "active":
                sh("docker", "swarm", "init", "--advertise-addr", "127.0.0.1", limit=60)
            self.remove_services(main)
        finally:
            main.close()

    def main_docker(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=MAIN_ENGINE, timeout=30)

    def remove_services(self, main: docker.DockerClient) -> None:
        for service in main.services.list(filters={"label": f"{LABEL_PROJECT}={self.project}"}):
            service.remove()

    def start_api(self) -> None:
        self.api.starts += 1
        log = (self.workdir / f"api-{self.api.starts}.log").open("wb")
        port = self.api_url.rsplit(":", 1)[1]
        cmd = [ZUN, "api", "--etcd", self.etcd.url, "--api-port", port]
        self.api.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill_api(self) -> None:
        if self.api.proc and self.api.proc.poll() is None:
            self.api.proc.send_signal(signal.SIGKILL)
            self.api.proc.wait(10)

    def store(self) -> RecordStore:
        return RecordStore(EtcdKV.from_url(self.etcd.url, timeout=3.0))

    def docker(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.engine_url, timeout=30)

    def start_replica(self, name: str) -> None:
        replica = self.replicas[name]
        replica.starts += 1
        log = (self.workdir / f"controller-{name}-{replica.starts}.log").open("wb")
        cmd = [ZUN, "run", "--etcd", self.etcd.url, "--health-port", "0", "--lease-ttl", "4"]
        cmd += ["--identity", f"{name}{replica.starts}", "--action-log", str(self.action_log)]
        replica.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def supervise(self) -> list[str]:
        """Restart replicas that exited by themselves (e.g. after losing the lease), as a
        supervisor (systemd, a Deployment) would; the names restarted."""
        restarted = []
        for name, replica in self.replicas.items():
            if replica.proc is not None and replica.proc.poll() is not None:
                self.start_replica(name)
                restarted.append(name)
        if self.api.proc is not None and self.api.proc.poll() is not None:
            self.start_api()
            restarted.append("api")
        return restarted

    def kill_replica(self, name: str) -> None:
        proc = self.replicas[name].proc
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def restart_engine(self) -> None:
        """A dockerd restart as an operator does it (SIGTERM, then start)."""
        pidfile = Path(f"/run/zun-dockerd-{self.engine}.pid")
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        # dockerd stops every container before it exits: with hundreds that takes minutes here,
        # and a new dockerd cannot start while the old one and its containerd still run
        deadline = time.monotonic() + 600
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for attempt in range(3):
            try:
                self.engine_url = sh("bash", str(DOCKERD), "start", self.engine)
                return
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                time.sleep(10)

    def stop(self) -> None:
        self.kill_api()
        for name in self.replicas:
            proc = self.replicas[name].proc
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.kill_replica(name)
        main = self.main_docker()
        try:
            self.remove_services(main)
        finally:
            main.close()
        self.etcd.signal(signal.SIGCONT)
        self.etcd.stop()
        subprocess.run(
            ["bash", str(DOCKERD), "stop", self.engine],
            capture_output=True,
            timeout=300,
            check=False,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
