"""The config hash and revision as the controller computed them before the hash rule, frozen.

Containers and Applications made before the rule carry these values (a Container's engine
container its `config-hash` label, an Application `status.currentRevision` and its replicas'
names and labels). The rule's own hashes differ from them, so each is accepted too, exactly
when the record asks for nothing the frozen code did not know: then the frozen code would
have produced the same engine object, and replacing it would restart a workload for no
change. Nothing here may change with the models or the naming: the functions read only the
fields listed in the schemas below, derive engine names by the formula of that time, and
tests pin their output on fixed records.

A schema is a nested mapping of the camelCase keys of a model dump; `None` marks a leaf (any
value), a mapping a nested model (for a list of models: each item).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from zun_controller.models.application import AppTemplate
from zun_controller.models.base import (
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_UID,
    MANAGED_BY,
)
from zun_controller.models.container import Container, ContainerSpec, RestartPolicy
from zun_controller.models.container import Healthcheck as HealthSpec

Schema = Mapping[str, "Schema | None"]

_HEALTHCHECK: Schema = {
    "command": None,
    "httpGet": {"path": None, "port": None},
    "intervalSeconds": None,
    "retries": None,
    "startPeriodSeconds": None,
    "timeoutSeconds": None,
}
_TEMPLATE: Schema = {
    "args": None,
    "command": None,
    "env": {"name": None, "value": None},
    "healthcheck": _HEALTHCHECK,
    "hostSelector": None,
    "hostname": None,
    "image": None,
    "labels": None,
    "networks": None,
    "ports": {
        "containerPort": None,
        "hostIp": None,
        "hostPort": None,
        "name": None,
        "protocol": None,
    },
    "resources": {"cpu": None, "memory": None},
    "restartPolicy": None,
    "runtime": None,
    "state": None,
    "volumes": {"mountPath": None, "readOnly": None, "volume": None},
    "workdir": None,
}
#: the Container spec fields the frozen config hash knew
CONTAINER_SPEC: Schema = {**_TEMPLATE, "rebuiltAt": None, "restartedAt": None}
#: the Application template fields the frozen revision knew
APP_TEMPLATE: Schema = {"containers": {**_TEMPLATE, "name": None}, "labels": None}

_RESTART = {
    RestartPolicy.ALWAYS: "always",
    RestartPolicy.ON_FAILURE: "on-failure",
    RestartPolicy.NEVER: "no",
}


def uses_only(data: Any, schema: Schema | None) -> bool:
    """Whether a dump (without defaults) sets only keys the schema lists, at every depth."""
    if schema is None:
        return True
    if isinstance(data, list):
        return all(uses_only(item, schema) for item in data)
    if not isinstance(data, dict):
        return True
    return all(k in schema and uses_only(v, schema[k]) for k, v in data.items())


def only_known(data: Any, schema: Schema | None) -> Any:
    """A full dump (defaults included) cut down to the keys the schema lists."""
    if schema is None:
        return data
    if isinstance(data, list):
        return [only_known(item, schema) for item in data]
    if not isinstance(data, dict):
        return data
    return {k: only_known(v, schema[k]) for k, v in data.items() if k in schema}


def legacy_revision(template: AppTemplate) -> str | None:
    """The revision the frozen code gave this template; None when the template sets a field
    that code did not know (it never saw such a template)."""
    if not uses_only(
        template.model_dump(mode="json", by_alias=True, exclude_defaults=True), APP_TEMPLATE
    ):
        return None
    full = only_known(template.model_dump(mode="json", by_alias=True), APP_TEMPLATE)
    return hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:10]


def legacy_config_hash(obj: Container) -> str | None:
    """The config-hash label the frozen code put on this record's engine container; None when
    the spec sets a field that code did not know."""
    spec = obj.spec
    how_to_pull = {"image_pull_policy", "image_pull_secrets"}  # never recreate, as in the rule
    if not uses_only(
        spec.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude=how_to_pull),
        CONTAINER_SPEC,
    ):
        return None
    parts = _engine_parts(obj.name, obj.project or "", obj.metadata.uid or "", spec)
    if spec.rebuilt_at is not None:
        parts["rebuilt_at"] = spec.rebuilt_at.astimezone(UTC).isoformat()
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _engine_parts(name: str, project: str, uid: str, spec: ContainerSpec) -> dict[str, Any]:
    """The engine configuration the frozen code derived, as the dict it hashed (cpu and
    memory were left out: they are updated in place)."""
    labels = {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_KIND: "Container",
        LABEL_NAME: name,
        LABEL_UID: uid,
    }
    if project:
        labels[LABEL_PROJECT] = project
    networks = [f"zun-{project}-{n}" for n in spec.networks] or [f"zun-{project}"]
    return {
        "name": f"zun-{project}-{name}",
        "image": spec.image,
        "labels": {**spec.labels, **labels},
        "entrypoint": list(spec.command) if spec.command is not None else None,
        "command": list(spec.args) if spec.args is not None else None,
        "env": {e.name: e.value for e in spec.env},
        "workdir": spec.workdir,
        "hostname": spec.hostname,
        "ports": [
            {
                "container_port": p.container_port,
                "protocol": p.protocol.value.lower(),
                "host_ip": p.host_ip,
                "host_port": p.host_port,
            }
            for p in spec.ports
        ],
        "restart_policy": _RESTART[spec.restart_policy],
        "networks": networks,
        "network_aliases": [name],
        "mounts": [
            {"volume": f"zun-{project}-{v.volume}", "path": v.mount_path, "read_only": v.read_only}
            for v in spec.volumes
        ],
        "healthcheck": _healthcheck(spec.healthcheck),
        "runtime": spec.runtime,
        "init": True,
    }


def _healthcheck(spec: HealthSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    if spec.command is not None:
        command = list(spec.command)
    else:
        assert spec.http_get is not None
        url = f"http://127.0.0.1:{spec.http_get.port}{spec.http_get.path}"
        command = ["sh", "-c", f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}"]
    return {
        "command": command,
        "interval": spec.interval_seconds,
        "timeout": spec.timeout_seconds,
        "retries": spec.retries,
        "start_period": spec.start_period_seconds,
    }
