"""What admission allows: the admin-set limits and defaults (`AdmissionPolicy`), and who writes
(`Writer`).

Every limit has a default that keeps a single-machine installation safe; an admin changes them
with `ZUN_ADMISSION_*` variables read by the composition root (`AdmissionPolicy.from_env`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

LOOPBACK = "127.0.0.1"
#: the annotation by which an admin lets a GitRepository write with admin rights
ACTS_AS = "zun.openstack.org/acts-as"
ACTS_AS_ADMIN = "admin"


@dataclass(frozen=True)
class Writer:
    """Who a write is made for: its name (in messages) and whether it has admin rights.
    (Children the controller makes are admitted with their owner's rights instead:
    `Admission.create_child`.)"""

    name: str
    admin: bool = False


ADMIN = Writer("admin", admin=True)


@dataclass(frozen=True)
class AdmissionPolicy:
    """Limits and defaults applied to every write by a writer without admin rights (sizes and
    quantities apply to admins too)."""

    #: upper bound of `Application.spec.replicas`
    max_replicas: int = 1000
    #: most items in any list or map a user sets (env, ports, labels, annotations, ...)
    max_items: int = 256
    #: upper bound of a cpu request, in cores
    max_cpu: float = 1024.0
    #: upper bound of a memory request, in bytes (4 TiB)
    max_memory: int = 4 * 2**40
    #: what a new container (or template container) without `resources.cpu` is given
    default_cpu: float = 0.5
    #: what a new container (or template container) without `resources.memory` is given
    default_memory: int = 512 * 2**20
    #: host addresses a port may be published on
    allowed_host_ips: frozenset[str] = frozenset({LOOPBACK})
    #: the inclusive range a fixed hostPort / nodePort must fall in (never under 1024)
    host_ports: tuple[int, int] = (1024, 65535)
    #: ports no record may publish (the API's own)
    reserved_ports: frozenset[int] = field(default_factory=frozenset)
    #: Events a project's writers may create per second (sustained), and in a burst
    event_rate: float = 5.0
    event_burst: int = 50
    #: seconds an Event written through admission lives (an etcd lease)
    event_ttl: int = 3600

    def reserving(self, port: int) -> AdmissionPolicy:
        """The same policy, with `port` (the API's) never publishable."""
        return replace(self, reserved_ports=self.reserved_ports | {port})

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AdmissionPolicy:
        """`ZUN_ADMISSION_MAX_REPLICAS`, `_MAX_ITEMS`, `_DEFAULT_CPU` (cores),
        `_DEFAULT_MEMORY` (bytes), `_HOST_IPS` (comma-separated), `_HOST_PORTS` (`LOW-HIGH`);
        a malformed value is a `ValueError` naming the variable."""
        out: dict[str, Any] = {}
        for suffix, (name, parse) in _PARSERS.items():
            raw = env.get(f"ZUN_ADMISSION_{suffix}", "").strip()
            if raw:
                try:
                    out[name] = parse(raw)
                except ValueError as exc:
                    raise ValueError(f"ZUN_ADMISSION_{suffix}: {exc}") from None
        return replace(cls(), **out)


def _ips(raw: str) -> frozenset[str]:
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def _port_range(raw: str) -> tuple[int, int]:
    low, _, high = raw.partition("-")
    lo, hi = int(low), int(high or low)
    if not 1024 <= lo <= hi <= 65535:
        raise ValueError("must be LOW-HIGH with 1024 <= LOW <= HIGH <= 65535")
    return lo, hi


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not 0 < value < float("inf"):
        raise ValueError("must be a positive number")
    return value


_PARSERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "MAX_REPLICAS": ("max_replicas", _positive_int),
    "MAX_ITEMS": ("max_items", _positive_int),
    "DEFAULT_CPU": ("default_cpu", _positive_float),
    "DEFAULT_MEMORY": ("default_memory", _positive_int),
    "HOST_IPS": ("allowed_host_ips", _ips),
    "HOST_PORTS": ("host_ports", _port_range),
}
