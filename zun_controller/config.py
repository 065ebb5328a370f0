"""Typed settings groups, built once by the command line and passed down; no module reads them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from zun_controller.gitops.policy import GitPolicy
from zun_controller.reconcilers.app_docker import DEFAULT_LB_IMAGE
from zun_controller.store.keyfile import KeyRing


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "zun"


@dataclass(frozen=True)
class EtcdSettings:
    #: client URL of an etcd to use; None starts an embedded etcd child process
    url: str | None = None
    data_dir: Path = field(default_factory=lambda: default_data_dir() / "etcd")
    timeout: float = 5.0
    #: keys sealing credential kinds (store/encryption.py); None: stored and read plain
    keys: KeyRing | None = None


@dataclass(frozen=True)
class ManagerSettings:
    workers: int = 4
    leader_election: bool = True
    lease_name: str = "zun-controller"
    lease_ttl: int = 10
    identity: str | None = None
    resync_period: float = 300.0
    health_host: str = "127.0.0.1"
    health_port: int = 8081
    gitops_cache: Path = field(default_factory=lambda: default_data_dir() / "gitops")
    #: which repositories GitRepositories may read, and how much (https and ssh by default)
    git_policy: GitPolicy = field(default_factory=GitPolicy)
    #: label /metrics series with project and record names (off: uids, no project names)
    metrics_tenant_names: bool = False
    #: append one JSON line per reconcile here (engine/actionlog.py); None: no action log
    action_log: Path | None = None
    #: the image of docker Clusters' balancer Containers (haproxy; see
    #: reconcilers/applications.md for what it must provide); the default is the test image
    #: hack/images.sh builds, which no registry serves
    lb_image: str = DEFAULT_LB_IMAGE
