"""The world under test: its own etcd, its own Docker engine (an extra dockerd, so restarting it
never touches anything else on the machine), two controller replicas competing for the lease,
each writing an action log, the REST API, and (with `bridge`) a Kubernetes test bed with the
CRDs and `zun-controller bridge`. Swarm Applications go to the main engine as a
single-node Swarm (a second Swarm cannot run beside it); their services carry the run's project,
the engine's name, so runs on different engines never see each other's."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker

from zun_controller.models.base import LABEL_PROJECT
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERD = ROOT / "hack" / "dockerd.sh"
IMAGES = ROOT / "hack" / "images.sh"
ZUN = str(Path(sys.executable).with_name("zun-controller"))
ENGINE = "chaos"
CRDS = ROOT / "crds"
MAIN_ENGINE = "unix:///var/run/docker.sock"


def sh(*cmd: str, env: dict[str, str] | None = None, limit: float = 300) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=limit, env=env)
    return done.stdout.strip()


@dataclass
class Replica:
    """One of the world's processes, restartable; each start logs to `<name>-<start>.log`."""

    name: str
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def launch(self, workdir: Path, cmd: list[str]) -> None:
        self.starts += 1
        with (workdir / f"{self.name}-{self.starts}.log").open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def exited(self) -> bool:
        """It ran and is gone (killed, crashed, or exited after losing its lease)."""
        return self.proc is not None and self.proc.poll() is not None


@dataclass
class World:
    workdir: Path
    #: the extra Docker engine this run owns (hack/dockerd.sh start NAME); one run per engine
    engine: str = ENGINE
    #: run the Kubernetes test bed and the kopf bridge too
    bridge: bool = False
    etcd: EtcdServer = field(init=False)
    engine_url: str = ""
    replicas: dict[str, Replica] = field(default_factory=dict)
    api: Replica = field(default_factory=lambda: Replica("api"))
    bridge_proc: Replica = field(default_factory=lambda: Replica("bridge"))
    kube: Any = None  # tests/e2e/testbed/kube.py KubeControlPlane, when `bridge`
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
            self.replicas[name] = Replica(f"controller-{name}")
            self.start_replica(name)
        self.token = sh(ZUN, "token", "--name", "chaos", "--role", "admin", "--etcd", self.etcd.url)
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.start_api()
        if self.bridge:
            self._start_kube()
            self.start_bridge()

    def _start_kube(self) -> None:
        sys.path.insert(0, str(ROOT / "tests" / "e2e"))
        from testbed.kube import start_control_plane  # noqa: PLC0415

        self.kube = start_control_plane(self.workdir / "kube")
        self.kube.kubectl_run("apply", "-f", str(CRDS))
        self.kube.kubectl_run("wait", "--for=condition=Established", "crd", "--all", timeout=60)
        self.kube.kubectl_run("create", "namespace", self.project)

    def start_bridge(self) -> None:
        cmd = [ZUN, "bridge", "--etcd", self.etcd.url, "--kubeconfig", str(self.kube.kubeconfig)]
        cmd += ["--health-port", "0", "--identity", f"bridge{self.bridge_proc.starts + 1}"]
        self.bridge_proc.launch(self.workdir, cmd)

    def kill_bridge(self) -> None:
        self.bridge_proc.kill()

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
        port = self.api_url.rsplit(":", 1)[1]
        self.api.launch(self.workdir, [ZUN, "api", "--etcd", self.etcd.url, "--api-port", port])

    def kill_api(self) -> None:
        self.api.kill()

    def store(self) -> RecordStore:
        return RecordStore(EtcdKV.from_url(self.etcd.url, timeout=3.0))

    def docker(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.engine_url, timeout=30)

    def start_replica(self, name: str) -> None:
        replica = self.replicas[name]
        cmd = [ZUN, "run", "--etcd", self.etcd.url, "--health-port", "0", "--lease-ttl", "4"]
        cmd += ["--identity", f"{name}{replica.starts + 1}", "--action-log", str(self.action_log)]
        replica.launch(self.workdir, cmd)

    def supervise(self) -> list[str]:
        """Restart replicas that exited by themselves (e.g. after losing the lease), as a
        supervisor (systemd, a Deployment) would; the names restarted."""
        restarted = []
        for name, replica in self.replicas.items():
            if replica.exited():
                self.start_replica(name)
                restarted.append(name)
        if self.api.exited():
            self.start_api()
            restarted.append("api")
        if self.bridge_proc.exited():
            self.start_bridge()
            restarted.append("bridge")
        return restarted

    def kill_replica(self, name: str) -> None:
        self.replicas[name].kill()

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
        self.kill_bridge()
        if self.kube is not None:
            self.kube.stop()
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
