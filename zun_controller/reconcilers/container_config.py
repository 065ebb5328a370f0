"""A Container record as the engine configuration to create, and the hash that says when an
existing container no longer matches it (then it is recreated).

The hash rule: the config hash is a hash of what the user set, never of what the controller
derives or defaults. It is the canonical JSON (sorted keys, camelCase) of `spec` dumped without
the fields at their default value, less what never recreates (cpu and memory are updated in
place; state, restartedAt and hostSelector act on the running container or on placement;
imagePullPolicy and imagePullSecrets say how to fetch the image, not what runs; a port's name
is a label for people). So a field the controller gains with a default leaves every hash as it
was, and so do the engine name, labels and network names the controller derives (identity, not
configuration). A new field's default must mean what the controller did before the field
existed. spec.rebuiltAt is in the hash: a rebuild request recreates.

Containers made before the rule carry the frozen hash of `legacy_hash`; `is_current`
accepts either, so an upgrade recreates nothing.

The OCI runtime a container is created with: its own `spec.runtime` (admin-set, or the
project's that admission filled in, docs/security.md "Sandboxed runtime"), else its Host's
`spec.runtime`, else the engine's default. A runtime a record names is never replaced, so no
Host takes a container out of its project's sandbox (the scheduler places it only on Hosts
that run it). Only the spec's runtime is in the hash: a Host's runtime applies to containers
created on it from then on and recreates none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

from zun_controller.drivers.runtime.base import ContainerConfig, Healthcheck, Mount, PortMapping
from zun_controller.models.base import LABEL_CONFIG_HASH
from zun_controller.models.container import Container, ContainerSpec, DesiredState, RestartPolicy
from zun_controller.models.container import Healthcheck as HealthSpec
from zun_controller.reconcilers.legacy_hash import legacy_config_hash
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
    obj: Container,
    objects: EngineObjects | None = None,
    *,
    name: str | None = None,
    host_runtime: str | None = None,
) -> ContainerConfig:
    """The container to make for `obj`, on `objects` (default: the names new objects get),
    named `name` (default: the name a new container gets; an existing one keeps its own), under
    its spec's runtime, else under `host_runtime` (its Host's `spec.runtime`)."""
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
        runtime=spec.runtime or host_runtime,
    )
    return replace(config, labels={**config.labels, LABEL_CONFIG_HASH: config_hash(obj)})


def _user_set(spec: ContainerSpec) -> dict[str, Any]:
    """The spec as the hash sees it: fields at their default and fields that never
    recreate are left out."""
    neutral = spec.model_copy(
        update={
            "resources": spec.resources.model_copy(update={"cpu": None, "memory": None}),
            "state": DesiredState.RUNNING,
            "restarted_at": None,
            "host_selector": {},
            "image_pull_policy": None,
            "image_pull_secrets": [],
            "ports": [p.model_copy(update={"name": None}) for p in spec.ports],
            "rebuilt_at": spec.rebuilt_at.astimezone(UTC) if spec.rebuilt_at else None,
        }
    )
    dumped: dict[str, Any] = neutral.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return dumped


def config_hash(obj: Container) -> str:
    """The hash rule's hash of `obj.spec` (module docstring): 16 hex digits, equal for specs
    that set the same values, whatever fields the model has gained with defaults since."""
    raw = json.dumps(_user_set(obj.spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def is_current(label: str | None, obj: Container) -> bool:
    """Whether an engine container with this config-hash label runs `obj`'s config: the
    rule's hash, or the frozen hash of a container made before the rule."""
    if label is None:
        return False
    return label == config_hash(obj) or label == legacy_config_hash(obj)
