"""Drive an engine container to the record's desired state, and read its status back."""

from __future__ import annotations

from zun_controller.drivers.runtime.base import ContainerState, Runtime
from zun_controller.drivers.runtime.base import ContainerStatus as Engine
from zun_controller.errors import NotFoundError, StaleRuntimeStateError, TransientError
from zun_controller.models.container import (
    Container,
    ContainerPhase,
    DesiredState,
    PublishedPort,
    RestartPolicy,
)
from zun_controller.models.container import Protocol as PortProtocol

_STOPPED = (Engine.CREATED, Engine.EXITED, Engine.DEAD)


def should_restart(obj: Container, state: ContainerState) -> bool:
    """Whether an exited container is started again: per restart policy, but always when it
    never ran or was stopped because the spec said Stopped (Zun's start after stop)."""
    if state.status == Engine.CREATED or state.started_at is None:
        return True
    ready = obj.status.condition("Ready")
    if ready is not None and ready.reason == "Stopped":
        return True  # it was stopped because the spec asked: Running again means start it
    policy = obj.spec.restart_policy
    if policy is RestartPolicy.ALWAYS:
        return True
    return policy is RestartPolicy.ON_FAILURE and (state.exit_code or 0) != 0


async def _start(runtime: Runtime, cid: str) -> None:
    """Start; a container the engine cannot start because its runtime task survived an engine
    restart is removed, so the next pass creates it afresh (its volumes are kept)."""
    try:
        await runtime.start(cid)
    except StaleRuntimeStateError as exc:
        await runtime.remove(cid)
        raise TransientError(f"container {cid[:12]} had a stale runtime task; recreating") from exc


async def restart(runtime: Runtime, state: ContainerState, grace: float) -> ContainerState:
    """Stop (SIGTERM, SIGKILL after `grace`) and start again, whatever its status: Docker's
    restart made of the port's own calls. A paused container is unpaused first."""
    cid = state.id
    if state.status == Engine.PAUSED:
        await runtime.unpause(cid)
    if state.status in (Engine.RUNNING, Engine.PAUSED, Engine.RESTARTING):
        await runtime.stop(cid, grace)
    await _start(runtime, cid)
    return await _inspect(runtime, cid)


async def _inspect(runtime: Runtime, cid: str) -> ContainerState:
    if (state := await runtime.inspect(cid)) is None:
        raise NotFoundError(f"container {cid[:12]} vanished while being reconciled")
    return state


async def apply_state(
    runtime: Runtime, obj: Container, state: ContainerState, grace: float
) -> ContainerState:
    want, now, cid = obj.spec.state, state.status, state.id
    if want is DesiredState.RUNNING:
        if now == Engine.PAUSED:
            await runtime.unpause(cid)
        elif now in _STOPPED and should_restart(obj, state):
            if state.started_at is not None:
                obj.status.restart_count += 1
            await _start(runtime, cid)
    elif want is DesiredState.STOPPED:
        if now == Engine.PAUSED:
            await runtime.unpause(cid)
        if now in (Engine.RUNNING, Engine.PAUSED, Engine.RESTARTING):
            await runtime.stop(cid, grace)
    elif want is DesiredState.PAUSED:
        if now in _STOPPED:
            await _start(runtime, cid)
        if now != Engine.PAUSED:
            await runtime.pause(cid)
    return await _inspect(runtime, cid)


_PHASES = {
    Engine.RUNNING: ContainerPhase.RUNNING,
    Engine.RESTARTING: ContainerPhase.RUNNING,
    Engine.PAUSED: ContainerPhase.PAUSED,
    Engine.REMOVING: ContainerPhase.DELETING,
}


def phase_of(obj: Container, state: ContainerState) -> ContainerPhase:
    """The phase the engine's state means for this record."""
    if (phase := _PHASES.get(state.status)) is not None:
        return phase
    stopped = obj.spec.state is DesiredState.STOPPED
    if state.status == Engine.CREATED:  # never started: stopped, if that is what the spec asks
        return ContainerPhase.STOPPED if stopped else ContainerPhase.CREATING
    if stopped or (state.exit_code or 0) == 0:
        return ContainerPhase.STOPPED
    return ContainerPhase.ERROR


def observe(obj: Container, state: ContainerState) -> None:
    """Fill obj.status from what the engine says."""
    status = obj.status
    status.phase = phase_of(obj, state)
    status.container_id = state.id
    status.ips = dict(state.ips)
    status.ports = [
        PublishedPort(
            container_port=p.container_port,
            protocol=PortProtocol(p.protocol.upper()),
            host_ip=p.host_ip,
            host_port=p.host_port,
        )
        for p in state.ports
    ]
    status.started_at = state.started_at
    status.exit_code = state.exit_code if state.status in _STOPPED else None
    status.health = state.health
    ready, reason, message = _readiness(obj, state)
    status.set_condition("Ready", ready, reason, message)


def _readiness(obj: Container, state: ContainerState) -> tuple[bool, str, str]:
    if state.status == Engine.RUNNING:
        if state.health == "unhealthy":
            return False, "Unhealthy", "the healthcheck fails"
        if state.health == "starting":
            return False, "HealthStarting", "waiting for the first healthcheck"
        return True, "Running", f"running since {state.started_at}"
    if state.status == Engine.PAUSED:
        return (
            False,
            "Paused",
            "paused as the spec asks" if obj.spec.state is DesiredState.PAUSED else "paused",
        )
    if state.status == Engine.RESTARTING:
        return False, "Restarting", "the engine is restarting it"
    detail = f"exit code {state.exit_code}" + (f": {state.error}" if state.error else "")
    return False, "Stopped" if obj.spec.state is DesiredState.STOPPED else "Exited", detail
