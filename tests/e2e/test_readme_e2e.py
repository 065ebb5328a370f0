"""README.md followed literally, as a new user on this machine would: `hack/up.sh` with its
embedded etcd (no --etcd), then the README's own Container manifest and its `zunctl` lines in
order, with the `export ZUN_URL=... ZUN_TOKEN=...` line that `up` printed. Checked from the
outside: the container answers HTTP on the manifest's hostPort, and after `delete --wait` no
Docker container of the record is left; SIGTERM stops `up` and its etcd.

The manifest and the commands are read from README.md at test time, so the README cannot
drift from what works. Two things differ from a user's shell, on purpose: `hack/up.sh` gets
free ports (`--data-dir`, `--api-port`, `--health-port`, `--etcd-port`) so it can run next to
other sessions, and ZUN_VENV names the virtualenv pytest runs in (hack/up.sh would otherwise
make and install `.venv` in this checkout).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from testbed.docker import MAIN_SOCKET_URL, client, wait_http
from zun_bed import clean_engine
from zunctl_bed import ZUNCTL, free_port

from zun_controller.models.base import LABEL_MANAGED_BY, LABEL_PROJECT, LABEL_UID, MANAGED_BY
from zun_controller.store.server import free_port_pair

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
UP_SH = REPO / "hack" / "up.sh"
VENV = Path(sys.executable).parent.parent

#: up.sh may start dockerd and build the images first (apt too, on a fresh machine)
BANNER_WITHIN_S = 300.0
RUNNING_WITHIN_S = 120.0


# ------------------------------------------------------------------------------ the README


def readme_block(lang: str) -> str:
    """The one fenced block of this language in README.md, unindented."""
    text = README.read_text()
    blocks = re.findall(rf"^( *)```{lang}\n(.*?)^\1```", text, flags=re.M | re.S)
    assert len(blocks) == 1, f"README.md should have one ```{lang} block, has {len(blocks)}"
    return textwrap.dedent(blocks[0][1])


@dataclass
class Tour:
    manifest: str
    exports: dict[str, str] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)

    @classmethod
    def from_readme(cls) -> Tour:
        tour = cls(readme_block("yaml"))
        for line in readme_block("sh").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["export"]:
                for word in words[1:]:
                    key, _, value = word.partition("=")
                    tour.exports[key] = value
            elif words:
                assert words[0] == "zunctl", f"README sh block: not a zunctl line: {line!r}"
                tour.commands.append(words[1:])
        return tour

    @property
    def record(self) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load(self.manifest)
        return doc

    @property
    def name(self) -> str:
        return str(self.record["metadata"]["name"])

    @property
    def project(self) -> str:
        return str(self.record["metadata"]["project"])

    @property
    def host_port(self) -> int:
        return int(self.record["spec"]["ports"][0]["hostPort"])

    @property
    def manifest_file(self) -> str:
        """The file `zunctl apply -f FILE` names: where the user saved the manifest."""
        apply = next(c for c in self.commands if c[0] == "apply")
        return apply[apply.index("-f") + 1]


# ------------------------------------------------------------------------------ hack/up.sh


def _pids_with(arg: str) -> list[int]:
    """Processes whose command line has this argument (our etcd: its data dir is ours)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if arg.encode() in args:
            pids.append(int(cmdline.parent.name))
    return pids


def _user_env() -> dict[str, str]:
    """This environment without Zun's or Docker's settings, as on a fresh machine (ZUN_ETCD
    would point `up` at another etcd, DOCKER_HOST at another engine)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ZUN_") and k != "DOCKER_HOST"}


class UpScript:
    """`hack/up.sh` in a subprocess (after its set-up it *is* `zun-controller up`: exec)."""

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / "up.log"
        self.data_dir = workdir / "data"
        self.etcd_port = free_port_pair()
        self.etcd_arg = f"--data-dir={self.data_dir / 'etcd'}"
        cmd = [
            str(UP_SH), "--data-dir", str(self.data_dir), "--api-port", str(free_port()),
            "--health-port", str(free_port()), "--etcd-port", str(self.etcd_port),
        ]  # fmt: skip
        env = {**_user_env(), "ZUN_VENV": str(VENV)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    def exports(self) -> dict[str, str]:
        """ZUN_URL and ZUN_TOKEN from the `export ...` line `up` prints on first start."""
        deadline = time.monotonic() + BANNER_WITHIN_S
        while time.monotonic() < deadline:
            found = re.search(r"^\s*export (ZUN_URL=\S+ ZUN_TOKEN=\S+)$", self.tail(), re.M)
            if found:
                return dict(w.split("=", 1) for w in found.group(1).split())
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"hack/up.sh printed no export line:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def terminate(self, within: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(within)

    def cleanup(self) -> None:
        """After a failure: stop `up`, and its etcd if `up` could not (pids found by our data
        dir, so only the etcd this test started)."""
        try:
            self.terminate()
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for pid in _pids_with(self.etcd_arg):
            os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def tour() -> Tour:
    return Tour.from_readme()


@pytest.fixture
def host_port_free(tour: Tour) -> None:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", tour.host_port))
        except OSError:
            pytest.skip(
                f"the README's hostPort {tour.host_port} is in use on this machine: the tour "
                "publishes its container there"
            )


@pytest.fixture
def up(host_port_free: None, tmp_path: Path) -> Iterator[UpScript]:
    script = UpScript(tmp_path)
    try:
        yield script
    finally:
        script.cleanup()


@pytest.fixture
def engine(up: UpScript, tour: Tour) -> Iterator[docker.DockerClient]:
    """The main engine, once up.sh has started it. The README's project must be free there
    (the README fixes its containers' names); it is cleaned afterwards, once `up` is stopped
    (a running `up` would make the container again)."""
    exports = up.exports()  # up.sh has run dockerd.sh and images.sh by now
    assert exports
    engine = client(MAIN_SOCKET_URL)
    labels = [f"{LABEL_MANAGED_BY}={MANAGED_BY}", f"{LABEL_PROJECT}={tour.project}"]
    theirs = engine.containers.list(ignore_removed=True, all=True, filters={"label": labels})
    if theirs:
        engine.close()
        pytest.skip(
            f"Zun containers of project {tour.project!r} already on the main engine "
            f"({', '.join(c.name for c in theirs)}): another README tour's; not ours to remove"
        )
    try:
        yield engine
    finally:
        up.cleanup()
        clean_engine(engine, (tour.project,))
        engine.close()


# ------------------------------------------------------------------------------ the test


def _zunctl(
    env: dict[str, str], cwd: Path, args: list[str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ZUNCTL, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _until_running(
    env: dict[str, str], cwd: Path, get: list[str], name: str
) -> subprocess.CompletedProcess[str]:
    """The README's `get` line again until its row for the container says Running."""
    deadline = time.monotonic() + RUNNING_WITHIN_S
    while True:
        got = _zunctl(env, cwd, get)
        rows = [line.split() for line in got.stdout.splitlines()]
        if got.returncode == 0 and any(name in row and "Running" in row for row in rows):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not Running in `zunctl {shlex.join(get)}`:\n{got}")
        time.sleep(1.0)


@pytest.mark.timeout(600)
def test_the_readme_tour_works_as_written(
    tour: Tour, up: UpScript, engine: docker.DockerClient, tmp_path: Path
) -> None:
    kinds = [c[0] for c in tour.commands]
    assert kinds == ["apply", "get", "logs", "exec", "describe", "delete"], kinds
    (tmp_path / tour.manifest_file).write_text(tour.manifest)
    env = {**_user_env(), **up.exports(), **tour.exports, "ZUN_CONFIG": "/nonexistent/zun.yaml"}
    name, uid = tour.name, ""

    for args in tour.commands:
        ran = _zunctl(env, tmp_path, args)
        assert ran.returncode == 0, (args, ran.stdout, ran.stderr, up.tail())
        match args[0]:
            case "apply":
                assert ran.stdout == f"container.zun.openstack.org/{name} created\n"
            case "get":
                _until_running(env, tmp_path, args, name)
                page = wait_http(f"http://127.0.0.1:{tour.host_port}/", timeout=30).text
                assert page.startswith("zun-test httpd v1"), page
                shown = _zunctl(env, tmp_path, ["get", "containers", name, "-o", "json"])
                uid = json.loads(shown.stdout)["metadata"]["uid"]
            case "logs":
                assert "listening on :8080" in ran.stdout, ran.stdout
            case "exec":
                assert ran.stdout.splitlines() == ["hi"], ran.stdout
            case "describe":
                assert "phase: Running" in ran.stdout, ran.stdout
                events = ran.stdout.split("\nEvents:", 1)[1].splitlines()
                reasons = {row.split()[1] for row in events[2:] if len(row.split()) > 1}
                assert {"Scheduled", "Created", "Started"} <= reasons, ran.stdout
            case "delete":
                assert f"container.zun.openstack.org/{name} deleted" in ran.stdout
                left = engine.containers.list(
                    ignore_removed=True, all=True, filters={"label": f"{LABEL_UID}={uid}"}
                )
                assert uid and left == [], left

    missing = _zunctl(env, tmp_path, ["get", "containers", name])
    assert missing.returncode == 1 and "not found" in missing.stderr, missing
    assert up.terminate() == 0, up.tail()
    deadline = time.monotonic() + 15
    while _pids_with(up.etcd_arg) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _pids_with(up.etcd_arg) == [], "up exited but its etcd runs on"
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", up.etcd_port), 1):
        pass
