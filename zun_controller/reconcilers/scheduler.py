"""Placement of Containers on Hosts: filter by readiness, selector, OCI runtime and free
capacity, then spread (fewest containers first, then most free memory), as Zun's filter
scheduler did. A container goes only to a Host whose engine reports the runtime it would run
under there (its own, else the Host's `spec.runtime`), and a container naming a runtime never
to a Host whose `spec.runtime` is another (that Host runs only its own)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    name: str
    labels: Mapping[str, str]
    ready: bool
    schedulable: bool
    cpu: float  # capacity in cores
    memory: int  # capacity in bytes
    allocated_cpu: float
    allocated_memory: int
    containers: int
    #: runtimes the engine reports (empty: not known yet, nothing filtered)
    runtimes: frozenset[str] = frozenset()
    #: the only runtime this Host runs: containers naming none get it (Host.spec.runtime)
    runtime: str | None = None


@dataclass(frozen=True)
class Request:
    cpu: float = 0.0
    memory: int = 0
    selector: Mapping[str, str] | None = None
    #: a host the container must go to (e.g. where its volumes live)
    required_host: str | None = None
    #: the container's OCI runtime (None: the engine's default)
    runtime: str | None = None


@dataclass(frozen=True)
class Decision:
    host: str | None
    reason: str  # why nothing fits, for the Unschedulable condition


def _state(c: Candidate, req: Request) -> str | None:
    if not c.ready:
        return "not ready"
    return None if c.schedulable else "not schedulable"


def _affinity(c: Candidate, req: Request) -> str | None:
    if req.required_host and c.name != req.required_host:
        return f"not {req.required_host}"
    if req.selector and any(c.labels.get(k) != v for k, v in req.selector.items()):
        return "selector does not match"
    return None


def _capacity(c: Candidate, req: Request) -> str | None:
    if c.allocated_cpu + req.cpu > c.cpu + 1e-9:
        return f"insufficient cpu ({c.cpu - c.allocated_cpu:.2f} free, {req.cpu:.2f} asked)"
    if c.allocated_memory + req.memory > c.memory:
        free = (c.memory - c.allocated_memory) // 2**20
        return f"insufficient memory ({free} MiB free, {req.memory // 2**20} MiB asked)"
    return None


def _runtime(c: Candidate, req: Request) -> str | None:
    if c.runtime and req.runtime and req.runtime != c.runtime:
        return f"runs only runtime {c.runtime!r}"
    runtime = req.runtime or c.runtime
    if runtime is None or not c.runtimes or runtime in c.runtimes:
        return None
    return f"runtime {runtime!r} is not registered on its engine"


FILTERS = (_state, _affinity, _runtime, _capacity)


def _rejection(c: Candidate, req: Request) -> str | None:
    return next((reason for f in FILTERS if (reason := f(c, req))), None)


def schedule(candidates: Iterable[Candidate], req: Request) -> Decision:
    fits, why = [], []
    for c in candidates:
        reason = _rejection(c, req)
        if reason is None:
            fits.append(c)
        else:
            why.append(f"{c.name}: {reason}")
    if not fits:
        detail = "; ".join(sorted(why)) if why else "no hosts registered"
        return Decision(None, f"0 hosts fit: {detail}")
    best = min(fits, key=lambda c: (c.containers, -(c.memory - c.allocated_memory), c.name))
    return Decision(best.name, "")
