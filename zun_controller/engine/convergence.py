"""Record statistics for metrics, read from informer caches: convergence latency (a spec change
seen -> status ready for that generation) and record counts by kind, phase and project.

What "ready" means is the kind's: condition Ready True for most (`is_ready_at`), phase Ready
for kinds whose conditions say something else (`phase_ready_at`: Applications, whose phase is
Ready when Available and the rollout complete)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from zun_controller.engine.informer import Cached, Informer
from zun_controller.errors import InvalidError
from zun_controller.metrics import Metrics
from zun_controller.store.codec import load
from zun_controller.store.keys import split_queue_key

#: whether a raw record's status says ready having observed the generation given
ReadyAt = Callable[[dict[str, Any], int], bool]


def _parsed(cached: Cached | None) -> dict[str, Any] | None:
    if cached is None:
        return None
    try:
        return load(cached.value)
    except InvalidError:
        return None


def _generation(data: dict[str, Any]) -> int:
    meta = data.get("metadata")
    return int(meta.get("generation", 0)) if isinstance(meta, dict) else 0


def _status(data: dict[str, Any]) -> dict[str, Any]:
    status = data.get("status")
    return status if isinstance(status, dict) else {}


def is_ready_at(data: dict[str, Any], generation: int) -> bool:
    """Whether status says Ready True having observed `generation`."""
    status = _status(data)
    if int(status.get("observedGeneration", 0)) < generation:
        return False
    conditions = status.get("conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )


def phase_ready_at(data: dict[str, Any], generation: int) -> bool:
    """Whether status says phase Ready having observed `generation`."""
    status = _status(data)
    return int(status.get("observedGeneration", 0)) >= generation and status.get("phase") == "Ready"


class ConvergenceTracker:
    """An informer handler timing each generation from first sight to ready."""

    def __init__(
        self,
        kind: str,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        ready: ReadyAt = is_ready_at,
    ) -> None:
        self._histogram = metrics.convergence.labels(kind)
        self._clock = clock
        self._ready = ready
        #: queue key -> (generation, when first seen)
        self._pending: dict[str, tuple[int, float]] = {}

    def __call__(self, key: str, old: Cached | None, new: Cached | None) -> None:
        data = _parsed(new)
        if data is None:
            self._pending.pop(key, None)
            return
        generation = _generation(data)
        pending = self._pending.get(key)
        ready = self._ready(data, generation)
        if pending is None or pending[0] != generation:
            if ready:
                self._pending.pop(key, None)  # converged before we saw it change
            else:
                self._pending[key] = (generation, self._clock())
        elif ready:
            self._histogram.observe(self._clock() - pending[1])
            del self._pending[key]

    def waiting(self) -> int:
        return len(self._pending)


def track_convergence(
    informer: Informer[Any], metrics: Metrics, ready: ReadyAt = is_ready_at
) -> ConvergenceTracker:
    tracker = ConvergenceTracker(informer.kind, metrics, ready=ready)
    informer.add_handler(tracker)
    return tracker


class RecordCounter:
    """(kind, phase, project, n) for every record cached, for `zun_records`; a kind's phases
    seen in any project are reported in each of its projects (0 where none), so series do not
    come and go. Phases are remembered per (key, revision): a scrape parses only what changed."""

    def __init__(self, informers: Iterable[Informer[Any]]) -> None:
        self._informers = informers
        self._phases: dict[tuple[str, str], tuple[int, str]] = {}

    def __call__(self) -> list[tuple[str, str, str, int]]:
        out: list[tuple[str, str, str, int]] = []
        seen: dict[tuple[str, str], tuple[int, str]] = {}
        for informer in self._informers:
            counts: Counter[tuple[str, str]] = Counter()
            for key in informer.list_keys():
                cached = informer.raw(key)
                if cached is None:
                    continue
                ident = (informer.kind, key)
                known = self._phases.get(ident)
                if known is None or known[0] != cached.mod_revision:
                    phase = str(_status(_parsed(cached) or {}).get("phase") or "Unknown")
                    known = (cached.mod_revision, phase)
                seen[ident] = known
                counts[(known[1], split_queue_key(key)[1] or "")] += 1
            phases = {p for p, _ in counts}
            projects = {p for _, p in counts}
            out += [(informer.kind, ph, pr, counts[(ph, pr)]) for ph in phases for pr in projects]
        self._phases = seen
        return out
