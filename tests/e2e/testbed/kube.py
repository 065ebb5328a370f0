"""A real Kubernetes control plane on loopback for e2e tests.

`start_control_plane(workdir)` builds the binaries once (``hack/kube-build.sh``, cached outside
the repository under ``${ZUN_CACHE:-~/.cache/zun}/kube/``) and starts etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake nodes; pods go Running/Ready without a
kubelet) with ``hack/kube-up.sh``. See docs/kubernetes-testbed.md.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
KUBE_BUILD = REPO / "hack" / "kube-build.sh"
KUBE_UP = REPO / "hack" / "kube-up.sh"

#: A cold build compiles k8s.io/kubernetes from source: tens of minutes on 2 shared cores.
BUILD_TIMEOUT_S = 3 * 3600
START_TIMEOUT_S = 300


class KubeTestbedError(RuntimeError):
    """The control plane could not be built or started (the message carries the log tail)."""


@dataclass
class KubeControlPlane:
    """A running control plane; `stop()` ends every process it started."""

    workdir: Path
    kubeconfig: Path
    kubectl: Path
    bin_dir: Path
    env_vars: dict[str, str] = field(default_factory=dict)
    _stopped: bool = field(default=False, repr=False)

    def env(self) -> dict[str, str]:
        """The process environment with KUBECONFIG pointing at this control plane."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def kubectl_run(
        self,
        *args: str,
        input_text: str | None = None,
        timeout: float = 60,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane and return the completed process."""
        cmd = [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(
            cmd,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise KubeTestbedError(
                f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc

    def kubectl_json(self, *args: str, timeout: float = 60) -> Any:
        """Run `kubectl ... -o json` and return the decoded document."""
        return json.loads(self.kubectl_run(*args, "-o", "json", timeout=timeout).stdout)

    def stop(self) -> None:
        """Stop every component (idempotent)."""
        if self._stopped:
            return
        _run_script([str(KUBE_UP), "stop", str(self.workdir)], timeout=120)
        self._stopped = True


def _run_script(
    cmd: Sequence[str], timeout: float, extra_env: Mapping[str, str] | None = None
) -> str:
    env = dict(os.environ)
    if extra_env:
        env.update(extra_env)
    try:
        proc = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise KubeTestbedError(f"{' '.join(cmd)} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-40:])
        raise KubeTestbedError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return proc.stdout


def build_binaries(timeout: float = BUILD_TIMEOUT_S) -> Path:
    """Run hack/kube-build.sh (a fast no-op once built) and return the bin directory."""
    out = _run_script([str(KUBE_BUILD)], timeout=timeout).strip().splitlines()
    if not out:
        raise KubeTestbedError(f"{KUBE_BUILD} printed no bin directory")
    return Path(out[-1])


def start_control_plane(
    workdir: Path,
    *,
    nodes: int = 2,
    build_timeout: float = BUILD_TIMEOUT_S,
    start_timeout: float = START_TIMEOUT_S,
) -> KubeControlPlane:
    """Build (if needed) and start a control plane with state, logs and kubeconfig in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    bin_dir = build_binaries(timeout=build_timeout)
    try:
        _run_script(
            [str(KUBE_UP), "start", str(workdir)],
            timeout=start_timeout,
            extra_env={"KUBE_BIN_DIR": str(bin_dir), "ZUN_KUBE_NODES": str(nodes)},
        )
    except KubeTestbedError:
        # kube-up.sh cleans up after itself on failure; make sure on a timeout too
        _run_script([str(KUBE_UP), "stop", str(workdir)], timeout=120)
        raise
    env_vars: dict[str, str] = {}
    env_file = workdir / "env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                env_vars[key] = value
    return KubeControlPlane(
        workdir=workdir,
        kubeconfig=workdir / "kubeconfig",
        kubectl=bin_dir / "kubectl",
        bin_dir=bin_dir,
        env_vars=env_vars,
    )
