"""`zun-controller up` as a user starts it, and `zunctl` as a user runs it, for e2e tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ZUN = str(BIN / "zun-controller")
ZUNCTL = str(BIN / "zunctl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class AllInOne:
    """`zun-controller up` in a subprocess; `url` and `token` as it printed them. `args` go to
    `up` after its own; `token`: the admin token of an earlier start on the same etcd (`up`
    prints one only on the first), so only the URL is read from the banner."""

    def __init__(
        self, workdir: Path, etcd_url: str, docker_url: str, *args: str, token: str | None = None
    ) -> None:
        self.log = workdir / "up.log"
        cmd = [
            ZUN, "up", "--etcd", etcd_url, "--data-dir", str(workdir / "data"),
            "--api-port", str(free_port()), "--health-port", str(free_port()),
            "--docker", docker_url, *args,
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.url, self.token = self._banner(token)

    def _banner(self, token: str | None, within: float = 60.0) -> tuple[str, str]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.log.read_text()
            found = re.search(r"export ZUN_URL=(\S+) ZUN_TOKEN=(\S+)", text)
            if found:
                return found.group(1), found.group(2)
            again = re.search(r"api: +(http://\S+)", text)
            if token is not None and again:
                return again.group(1), token
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"no URL and token printed:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crash: no finalizer, lease or engine call is finished."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def zunctl(
    url: str, token: str, project: str, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ZUN_URL": url,
        "ZUN_TOKEN": token,
        "ZUN_PROJECT": project,
        "ZUN_CONFIG": "/nonexistent/zun.yaml",
    }
    return subprocess.run(
        [ZUNCTL, *args],
        check=False,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class ApiOnly:
    """`zun-controller api` in a subprocess, and an admin token made by `zun-controller token`."""

    def __init__(self, workdir: Path, etcd_url: str, *args: str, zun: str = ZUN) -> None:
        """`args` go to `zun-controller api` after --etcd and --api-port; `zun` is the
        `zun-controller` to run (another release's, in upgrade tests)."""
        self.log = workdir / "api.log"
        self.port = port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        made = subprocess.run(
            [zun, "token", "--name", "root", "--role", "admin", "--etcd", etcd_url],
            check=True, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        self.token = made.stdout.strip()
        cmd = [zun, "api", "--etcd", etcd_url, "--api-port", str(port), *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "zun-controller api is up" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"api did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
