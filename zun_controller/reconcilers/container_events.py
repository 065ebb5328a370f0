"""What the Container reconciler tells the world about its actions: Events (through the
`EventRecorder`) and drift corrections (`zun_drift_corrections_total{kind="Container"}`).

A correction is drift when the record did not change since it was last converged
(generation == status.observedGeneration) yet the engine had to be acted on: the container
was gone (recreated), exited (restarted), paused (unpaused), running while it should be
stopped (stopped) or not paused while it should be (paused)."""

from __future__ import annotations

from zun_controller.drivers.runtime.base import ContainerState
from zun_controller.drivers.runtime.base import ContainerStatus as Engine
from zun_controller.engine.events import EventRecorder
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.event import EventType

DRIFT_ACTIONS = ("recreated", "restarted", "unpaused", "stopped", "paused")
_STOPPED = (Engine.CREATED, Engine.EXITED, Engine.DEAD)
NORMAL, WARNING = EventType.NORMAL, EventType.WARNING


def _unchanged(obj: Container) -> bool:
    return obj.metadata.generation == obj.status.observed_generation


def _transition(before: Engine, after: Engine) -> tuple[str, str] | None:
    """(event reason, drift action) of an engine state change we caused, if any."""
    if after == Engine.RUNNING and before != Engine.RUNNING:
        return "Started", "unpaused" if before == Engine.PAUSED else "restarted"
    if after in _STOPPED and before in (Engine.RUNNING, Engine.PAUSED, Engine.RESTARTING):
        return "Stopped", "stopped"
    if after == Engine.PAUSED and before != Engine.PAUSED:
        return "Paused", "paused"
    return None


class ContainerEvents:
    def __init__(self, recorder: EventRecorder | None, metrics: Metrics | None) -> None:
        self._recorder, self._metrics = recorder, metrics
        if metrics is not None:
            metrics.init_drift("Container", DRIFT_ACTIONS)

    def _record(self, obj: Container, type_: EventType, reason: str, message: str) -> None:
        if self._recorder is not None:
            self._recorder.record(obj, type_, reason, message)

    def _drift(self, obj: Container, action: str, message: str) -> None:
        if self._metrics is not None:
            self._metrics.drift_corrections.labels("Container", action).inc()
        self._record(obj, WARNING, "DriftCorrected", message)

    def scheduled(self, obj: Container) -> None:
        self._record(obj, NORMAL, "Scheduled", f"placed on host {obj.status.host}")

    def unschedulable(self, obj: Container, why: str) -> None:
        self._record(obj, WARNING, "Unschedulable", why)

    def failed(self, obj: Container, reason: str, message: str) -> None:
        self._record(obj, WARNING, reason, message)

    def created(self, obj: Container, state: ContainerState) -> None:
        if obj.status.container_id and _unchanged(obj):
            self._drift(obj, "recreated", f"container {state.name} was gone; created again")
        elif obj.status.container_id:
            self._record(obj, NORMAL, "Recreated", f"container {state.name} for the new spec")
        else:
            self._record(obj, NORMAL, "Created", f"container {state.name}")

    def restarted(self, obj: Container, state: ContainerState) -> None:
        self._record(obj, NORMAL, "Restarted", f"container {state.name}, as spec.restartedAt asks")

    def state_changed(self, obj: Container, before: ContainerState, after: ContainerState) -> None:
        change = _transition(before.status, after.status)
        if change is None:
            return
        reason, action = change
        self._record(obj, NORMAL, reason, f"container {after.name} on host {obj.status.host}")
        if _unchanged(obj) and before.status != Engine.CREATED:
            self._drift(obj, action, f"engine said {before.status}; {action} container")

    def killed(self, obj: Container, state: ContainerState) -> None:
        self._record(obj, NORMAL, "Killed", f"container {state.name} stopped and removed")
