"""An Application as a raw Docker Swarm service spec (the Engine API's JSON, not the SDK's
helper types), and the fields of a running service this driver owns.

Only what Zun means is set; the engine fills in the rest. Updates post back the service's
own raw spec with only these fields replaced (shared/MEASURED.md: the SDK's `update()` and
`scale()` resend defaults, which Swarm takes as a change and restarts every task).

- One container per replica: Swarm has no pods, so a template with more containers is a
  `PermanentError` reason `Unsupported` naming `spec.template.containers`.
- Ports are published in host mode (the ingress routing mesh does not pass traffic on this
  kernel); a fixed `nodePort` allows one replica per node, an unset one lets the engine pick.
- `update_config` / `rollback_config` come from the update strategy; failure_action is `pause`
  so that the Application reconciler, not Swarm, decides whether to roll back.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from zun_controller.drivers.orchestrators.rollout import surge_and_unavailable
from zun_controller.errors import PermanentError
from zun_controller.models.application import Application, AppTemplate, ServiceType
from zun_controller.models.base import (
    LABEL_CONFIG_HASH,
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_UID,
    MANAGED_BY,
)
from zun_controller.models.container import Healthcheck, RestartPolicy

LABEL_REVISION = "zun.openstack.org/revision"
DNS_LABEL_MAX = 63
_DIGEST_CHARS = 16
NANO = 1_000_000_000
#: seconds a task gets between SIGTERM and SIGKILL (the test images stop in ~0.2 s)
STOP_GRACE_S = 2
_RESTART = {
    RestartPolicy.ALWAYS: "any",
    RestartPolicy.ON_FAILURE: "on-failure",
    RestartPolicy.NEVER: "none",
}


def service_name(app: Application) -> str:
    """A new service's name: `zun_<project>_<app>`, one per (project, app) since neither part
    can contain `_`; a service name is a DNS label on overlay networks (at most 63 characters),
    so a longer one keeps its start and ends with a digest of all of it. A service of an
    earlier version (`zun-<project>-<app>`) is found by its labels and keeps its name."""
    name = f"zun_{app.project}_{app.name}"
    if len(name) <= DNS_LABEL_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{name[: DNS_LABEL_MAX - _DIGEST_CHARS - 1]}_{digest}"


def network_name(project: str) -> str:
    """The project's swarm-scoped bridge network: projects stay apart on Swarm too, and tasks
    do not depend on the engine's default bridge. No other object Zun makes now has this name
    (theirs contain `_`); one there that is not this project's is a NameConflict."""
    return f"zun-swarm-{project}"


def network_labels(project: str) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: "Network", LABEL_PROJECT: project}


def owner_labels(app: Application) -> dict[str, str]:
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_KIND: "Application",
        LABEL_PROJECT: app.project or "",
        LABEL_NAME: app.name,
        LABEL_UID: app.metadata.uid or "",
    }


def _healthcheck(spec: Healthcheck) -> dict[str, Any]:
    if spec.command is not None:
        test = ["CMD", *spec.command]
    else:
        assert spec.http_get is not None
        url = f"http://127.0.0.1:{spec.http_get.port}{spec.http_get.path}"
        test = ["CMD-SHELL", f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}"]
    return {
        "Test": test,
        "Interval": int(spec.interval_seconds * NANO),
        "Timeout": int(spec.timeout_seconds * NANO),
        "Retries": spec.retries,
        "StartPeriod": int(spec.start_period_seconds * NANO),
    }


def _check_supported(template: AppTemplate) -> None:
    if len(template.containers) != 1:
        raise PermanentError(
            "Unsupported",
            f"spec.template.containers: Swarm runs one container per replica; "
            f"the template has {len(template.containers)}",
        )
    if template.containers[0].volumes:
        raise PermanentError(
            "Unsupported", "spec.template.containers[0].volumes: not supported on Swarm"
        )


def task_template(app: Application, template: AppTemplate, revision: str) -> dict[str, Any]:
    _check_supported(template)
    c = template.containers[0]
    spec: dict[str, Any] = {
        "Image": c.image,
        "Labels": {**template.labels, **c.labels, **owner_labels(app), LABEL_REVISION: revision},
        "Env": [f"{e.name}={e.value}" for e in c.env],
        "StopGracePeriod": STOP_GRACE_S * NANO,
        "Init": True,
    }
    optional = {"Command": c.command, "Args": c.args, "Dir": c.workdir, "Hostname": c.hostname}
    spec.update({k: v for k, v in optional.items() if v is not None})
    if c.healthcheck is not None:
        spec["Healthcheck"] = _healthcheck(c.healthcheck)
    limits: dict[str, int] = {}
    if c.resources.cpu is not None:
        limits["NanoCPUs"] = int(c.resources.cpu * NANO)
    if c.resources.memory is not None:
        limits["MemoryBytes"] = c.resources.memory
    return {
        "ContainerSpec": spec,
        "Networks": [{"Target": network_name(app.project or "")}],
        "Resources": {"Limits": limits},
        "RestartPolicy": {"Condition": _RESTART[c.restart_policy], "Delay": NANO},
    }


def update_config(app: Application) -> dict[str, Any]:
    strategy = app.spec.update_strategy
    surge, unavailable = surge_and_unavailable(strategy, max(app.spec.replicas, 1))
    return {
        "Parallelism": max(1, surge if surge > 0 else unavailable),
        "Delay": 0,
        "FailureAction": "pause",
        "Monitor": max(strategy.min_ready_seconds, 5) * NANO,
        "MaxFailureRatio": 0,
        "Order": "start-first" if surge > 0 else "stop-first",
    }


def endpoint_spec(app: Application) -> dict[str, Any]:
    service = app.spec.service
    if service is None or service.type is ServiceType.INTERNAL:
        return {"Mode": "vip"}
    ports = []
    for p in service.ports:
        port: dict[str, Any] = {
            "Protocol": p.protocol.value.lower(),
            "TargetPort": p.target_port,
            "PublishMode": "host",
        }
        if p.node_port is not None:
            port["PublishedPort"] = p.node_port
        ports.append(port)
    return {"Mode": "vip", "Ports": ports}


def _digest(part: Any) -> str:
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]


def managed_fields(app: Application, template: AppTemplate, revision: str) -> dict[str, Any]:
    """The top-level fields of a service spec that Zun sets; the rest is the engine's."""
    tmpl = task_template(app, template, revision)
    config = update_config(app)
    labels = {**owner_labels(app), LABEL_REVISION: revision, LABEL_CONFIG_HASH: _digest(tmpl)}
    return {
        "Name": service_name(app),
        "Labels": labels,
        "Mode": {"Replicated": {"Replicas": app.spec.replicas}},
        "TaskTemplate": tmpl,
        "UpdateConfig": config,
        "RollbackConfig": dict(config),
        "EndpointSpec": endpoint_spec(app),
    }


def replicas_of(spec: dict[str, Any]) -> int | None:
    replicated = (spec.get("Mode") or {}).get("Replicated")
    return None if replicated is None else int(replicated.get("Replicas", 0))


def covers(current: Any, wanted: Any) -> bool:
    """Whether `current` says everything `wanted` says: the engine may have added defaults,
    and it leaves out zero values (`Delay: 0`, `MaxFailureRatio: 0`) when it stores a spec."""
    if current is None and not wanted:
        return True
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(
            covers(current.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(current, list)
            and len(current) == len(wanted)
            and all(covers(c, w) for c, w in zip(current, wanted, strict=True))
        )
    return bool(current == wanted)


def _template_differs(spec: dict[str, Any], wanted: dict[str, Any]) -> bool:
    labels = spec.get("Labels") or {}
    image = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
    image = image.split("@", 1)[0]  # the engine may pin a digest
    want_image = wanted["TaskTemplate"]["ContainerSpec"]["Image"]
    same_hash = labels.get(LABEL_CONFIG_HASH) == wanted["Labels"][LABEL_CONFIG_HASH]
    return not same_hash or bool(image != want_image)


def patch(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The raw spec to post back, or None when the service already matches.

    The task template is replaced only when its hash label differs (or its image was changed
    by hand): re-posting an equal template without the defaults the engine filled in could
    restart tasks. Replicas, update/rollback config and ports are replaced field by field.
    """
    spec = json.loads(json.dumps(current))
    changed = False
    if _template_differs(spec, wanted):
        spec["TaskTemplate"], spec["Labels"] = wanted["TaskTemplate"], wanted["Labels"]
        changed = True
    for key in ("Mode", "UpdateConfig", "RollbackConfig", "EndpointSpec"):
        if not covers(spec.get(key), wanted[key]):
            spec[key] = wanted[key]
            changed = True
    return spec if changed else None
