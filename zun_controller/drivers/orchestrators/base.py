"""The `Orchestrator` port: one Application on one container orchestration engine.

An orchestrator is told a template and its revision name (a hash of the template) and makes
the engine run `replicas` of it, rolling from whatever revision ran before under the
Application's update strategy. It reports what the engine sees; deciding to roll back (and to
what) is the Application reconciler's job, engine-independent: it applies the previous
template as a new `apply`.

Every call is idempotent and bounded in time; errors are the package's (`TransientError` when
the engine is unreachable, `PermanentError(reason, ...)` when the spec cannot run there).
Everything created carries Zun's labels (`zun.openstack.org/uid`, `/project`, `/name`, `/kind`)
so a restarted controller finds its own and `list_owned` finds orphans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from zun_controller.models.application import Application, AppTemplate


@dataclass(frozen=True)
class ClusterInfo:
    version: str
    nodes: int
    cpus: float
    memory: int


@dataclass(frozen=True)
class AppObservation:
    exists: bool
    #: replicas the engine runs for the Application, of any revision
    replicas: int = 0
    #: running and passing health, of any revision
    ready: int = 0
    #: replicas of the revision asked for in the last apply
    updated: int = 0
    #: ready for at least minReadySeconds
    available: int = 0
    #: the revision the engine is converging to
    revision: str | None = None
    #: where clients reach the app (e.g. "127.0.0.1:30080", a Service's cluster address)
    endpoints: tuple[str, ...] = ()
    #: a rollout toward `revision` is under way
    progressing: bool = False
    #: why the rollout toward `revision` failed (deadline passed, failing health); else None
    failed: str | None = None
    #: the endpoints forward to the ready replicas (False while a balancer of the
    #: orchestrator's own has not been given them yet)
    serving: bool = True
    #: free-form engine detail for conditions (e.g. "3/3 tasks running")
    message: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OwnedApp:
    project: str
    name: str
    uid: str


class Orchestrator(Protocol):
    async def info(self) -> ClusterInfo: ...

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        """Make the engine run spec.replicas of `template` as revision `revision`; True when
        the engine had to be changed (something created or its spec rewritten), as
        controller-runtime's CreateOrUpdate says created/updated/unchanged. Said of the objects
        the orchestrator writes, not of what the engine does on its own after (tasks, Pods)."""
        ...

    async def observe(self, app: Application, revision: str) -> AppObservation: ...

    async def delete(self, app: Application) -> bool:
        """Remove everything made for the Application; True once nothing is left."""
        ...

    async def list_owned(self) -> list[OwnedApp]: ...

    async def close(self) -> None: ...
