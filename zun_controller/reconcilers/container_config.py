"""A Container record as the engine configuration to create, and the hash that says when an
existing container no longer matches it (then it is recreated; cpu and memory are updated in
place instead, and are left out of the hash; spec.rebuiltAt is in it, so a rebuild request
recreates)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from zun_controller.drivers.runtime.base import ContainerConfig, Healthcheck, Mount, PortMapping
from zun_controller.models.base import LABEL_CONFIG_HASH
from zun_controller.models.container import Container, RestartPolicy
from zun_controller.models.container import Healthcheck as HealthSpec
from zun_controller.reconcilers.naming import (
    container_name,
    default_network,
    labels_for,
    network_name,
    volume_name,
)


@dataclass(frozen=True)
class EngineObjects:
    """The engine names a Container's networks and volumes are found under (engine_names):
    networks in `spec.networks` order (or the default one), volumes by Volume record name."""

    networks: tuple[str, ...]
    volumes: Mapping[str, str] = field(default_factory=dict)


def engine_objects(obj: Container) -> EngineObjects:
    """The names new objects get; what engine_names resolves when none of ours is elsewhere."""
    project = obj.project or ""
    return EngineObjects(
        network_names(obj), {v.volume: volume_name(project, v.volume) for v in obj.spec.volumes}
    )


_RESTART = {
    RestartPolicy.ALWAYS: "always",
    RestartPolicy.ON_FAILURE: "on-failure",
    RestartPolicy.NEVER: "no",
}


def _healthcheck(spec: HealthSpec | None) -> Healthcheck | None:
    if spec is None:
        return None
    if spec.command is not None:
        command = tuple(spec.command)
    else:
        assert spec.http_get is not None
        url = f"http://127.0.0.1:{spec.http_get.port}{spec.http_get.path}"
        # runs inside the container: the image needs wget (busybox) or curl
        command = ("sh", "-c", f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}")
    return Healthcheck(
        command=command,
        interval=spec.interval_seconds,
        timeout=spec.timeout_seconds,
        retries=spec.retries,
        start_period=spec.start_period_seconds,
    )


def network_names(obj: Container) -> tuple[str, ...]:
    project = obj.project or ""
    if not obj.spec.networks:
        return (default_network(project),)
    return tuple(network_name(project, n) for n in obj.spec.networks)


def desired_config(
    obj: Container, objects: EngineObjects | None = None, *, name: str | None = None
) -> ContainerConfig:
    """The container to make for `obj`, on `objects` (default: the names new objects get),
    named `name` (default: the name a new container gets; an existing one keeps its own)."""
    spec, project = obj.spec, obj.project or ""
    objects = objects or engine_objects(obj)
    config = ContainerConfig(
        name=name or container_name(project, obj.name),
        image=spec.image,
        labels={**spec.labels, **labels_for(obj)},
        entrypoint=tuple(spec.command) if spec.command is not None else None,
        command=tuple(spec.args) if spec.args is not None else None,
        env={e.name: e.value for e in spec.env},
        workdir=spec.workdir,
        hostname=spec.hostname,
        ports=tuple(
            PortMapping(p.container_port, p.protocol.value.lower(), p.host_ip, p.host_port)
            for p in spec.ports
        ),
        cpus=spec.resources.cpu,
        memory=spec.resources.memory,
        restart_policy=_RESTART[spec.restart_policy],
        networks=objects.networks,
        network_aliases=(obj.name,),
        mounts=tuple(
            Mount(objects.volumes[v.volume], v.mount_path, v.read_only) for v in spec.volumes
        ),
        healthcheck=_healthcheck(spec.healthcheck),
        runtime=spec.runtime,
    )
    digest = config_hash(config, spec.rebuilt_at)
    return replace(config, labels={**config.labels, LABEL_CONFIG_HASH: digest})


def config_hash(config: ContainerConfig, rebuilt_at: datetime | None = None) -> str:
    """What forces a recreate: everything but cpu and memory (updated in place), and the
    rebuild request; none leaves the hash of every container made before it as it was."""
    parts = asdict(config)
    for live in ("cpus", "memory"):
        parts.pop(live)
    parts["labels"] = {k: v for k, v in config.labels.items() if k != LABEL_CONFIG_HASH}
    if rebuilt_at is not None:
        parts["rebuilt_at"] = rebuilt_at.astimezone(UTC).isoformat()
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]
