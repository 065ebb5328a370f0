"""An etcd server run as a child process: the all-in-one's embedded store and the test bed's.

It listens on loopback only, on the ports given (or free ones), with its data in `data_dir`.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from zun_controller.errors import TransientError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A free port whose successor is free too (an etcd's client port, its peer port next)."""
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def find_etcd() -> str:
    path = os.environ.get("ZUN_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
    if not Path(path).exists():
        raise FileNotFoundError(
            "etcd not found: install Debian's etcd-server (hack/setup.sh does) or set ZUN_ETCD_BIN"
        )
    return path


@dataclass
class EtcdServer:
    data_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def command(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            find_etcd(),
            "--name=zun",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=zun={peer}",
            "--log-level=warn",
            "--logger=zap",
        ]

    def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_path or self.data_dir.with_suffix(".log")).open("ab")
        self._proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise TransientError(f"etcd exited with {self._proc.returncode}; see its log")
            if self._answers():
                return
            time.sleep(0.05)
        raise TransientError(f"etcd did not answer on {self.url} within {timeout}s")

    def _answers(self) -> bool:
        """etcd's /version answers: a port that merely accepts (someone else's) is not ready.
        http.client, not urllib: no proxy from the environment on the way to loopback."""
        conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=0.5)
        try:
            conn.request("GET", "/version")
            return b"etcdserver" in conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def signal(self, signum: int) -> None:
        if self._proc is not None:
            os.kill(self._proc.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
