"""The Docker orchestrator's rolling update, one step at a time, as a pure function.

Given the replicas of the target revision ("new") and of any other ("old"), decide which
replica indexes to create and which replicas to drain (take out of the load balancer, then
delete). Deployment semantics: at most replicas + maxSurge live at once, at least
replicas - maxUnavailable ready; not-ready old replicas go first (they serve nobody), ready
old ones only as new ones become ready. Replicas already draining count for nothing.
A step creates at most `MAX_CREATES` replicas, so however many replicas a record asks for
(admission bounds them; a record written straight to etcd may not be), a step's work and
memory stay bounded: the next steps create the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

#: replicas one step creates at most
MAX_CREATES = 64


@dataclass(frozen=True)
class Replica:
    name: str
    index: int
    ready: bool


@dataclass(frozen=True)
class Step:
    create: tuple[int, ...] = ()
    drain: tuple[str, ...] = ()


def _free_indexes(taken: set[int], count: int) -> tuple[int, ...]:
    """The `count` lowest indexes not taken (at most `MAX_CREATES`)."""
    count = min(count, MAX_CREATES)
    out: list[int] = []
    i = 0
    while len(out) < count:
        if i not in taken:
            out.append(i)
        i += 1
    return tuple(out)


def _surplus(replicas: list[Replica], keep: int) -> list[str]:
    """Which to drain to keep `keep`: not-ready first, then the highest indexes."""
    order = sorted(replicas, key=lambda r: (r.ready, -r.index))
    return [r.name for r in order[: max(0, len(replicas) - keep)]]


def plan(
    desired: int, surge: int, unavailable: int, new: list[Replica], old: list[Replica]
) -> Step:
    if not old:
        missing = desired - len(new)
        if missing > 0:
            return Step(create=_free_indexes({r.index for r in new}, missing))
        return Step(drain=tuple(_surplus(new, desired)))
    room = desired + surge - len(new) - len(old)
    create = max(0, min(desired - len(new), room))
    drain = [r.name for r in old if not r.ready]
    ready_old = [r for r in old if r.ready]
    ready_total = len(ready_old) + sum(r.ready for r in new)
    budget = ready_total - (desired - unavailable)
    if sum(r.ready for r in new) >= desired:
        budget = len(ready_old)
    drain += [r.name for r in sorted(ready_old, key=lambda r: -r.index)[: max(0, budget)]]
    extra = _surplus(new, desired) if len(new) > desired else []
    return Step(create=_free_indexes({r.index for r in new}, create), drain=tuple(drain + extra))


def hold_until_pulled(step: Step, new: list[Replica], old: list[Replica], pulled: bool) -> Step:
    """Keep every ready old replica until a new one's image was pulled (`pulled`: a new
    replica has a container), so an image that cannot be pulled costs no serving replica.
    Applies once new replicas exist or are made in this step; with maxSurge 0 and none yet,
    the step is left as it is (holding it would wait forever)."""
    if pulled or not old or not (new or step.create):
        return step
    ready_old = {r.name for r in old if r.ready}
    return Step(step.create, tuple(name for name in step.drain if name not in ready_old))
