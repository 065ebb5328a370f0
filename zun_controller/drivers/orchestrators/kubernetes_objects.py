"""Kubernetes manifests for an Application: a Namespace per project, a Deployment, a Service.

Pure functions from records to the JSON documents that are server-side applied (and back: the
observation read from a Deployment's status). No client calls here; `kubernetes.py` sends them.
See docs/kubernetes-orchestrator.md for the mapping and what is not supported.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from zun_controller.errors import PermanentError
from zun_controller.models.application import (
    AppContainer,
    Application,
    AppService,
    AppTemplate,
    ServiceType,
    StrategyType,
)
from zun_controller.models.base import (
    GROUP,
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_UID,
    MANAGED_BY,
)
from zun_controller.models.container import Healthcheck

Manifest = dict[str, Any]

LABEL_REVISION = f"{GROUP}/revision"
KIND = "Application"
NAMESPACE_PREFIX = "zun-"
DNS_LABEL_MAX = 63
_DIGEST_CHARS = 16
#: ReplicaSets kept for `kubectl rollout undo` and for Zun's own rollback to find again.
REVISION_HISTORY = 5
_SERVICE_TYPES = {
    ServiceType.LOAD_BALANCER: "LoadBalancer",
    ServiceType.NODE_PORT: "NodePort",
    ServiceType.INTERNAL: "ClusterIP",
}


def project_of(app: Application) -> str:
    if not app.metadata.project:
        raise PermanentError("InvalidSpec", "metadata.project: an Application needs a project")
    return app.metadata.project


def namespace_of(app: Application) -> str:
    """The namespace of a project that has none yet: `zun-<project>`, so no project lands in
    `default`, `kube-system` or another tenant's namespace; a namespace is a DNS label (at
    most 63 characters), so a longer one keeps its start and ends with a digest of all of it."""
    name = f"{NAMESPACE_PREFIX}{project_of(app)}"
    if len(name) <= DNS_LABEL_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{name[: DNS_LABEL_MAX - _DIGEST_CHARS - 1].rstrip('-')}-{digest}"


def legacy_namespace(app: Application) -> str:
    """Where earlier versions put a project's apps: the project's own name. Used only when
    that namespace carries the project's labels (Zun made it for this project)."""
    return project_of(app)


def namespace_is_ours(namespace: Manifest, project: str) -> bool:
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in namespace_labels(project).items())


def in_namespace(manifest: Manifest, namespace: str) -> Manifest:
    return {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}


def selector(app: Application) -> dict[str, str]:
    """Stable across revisions and uids: a Deployment's selector cannot change."""
    return {LABEL_KIND: KIND, LABEL_PROJECT: project_of(app), LABEL_NAME: app.name}


def owner_labels(app: Application) -> dict[str, str]:
    return {**selector(app), LABEL_MANAGED_BY: MANAGED_BY, LABEL_UID: app.metadata.uid or ""}


def is_ours(obj: Manifest, app: Application) -> bool:
    """Made by Zun for this project and name (a previous uid of the same name counts)."""
    labels = obj.get("metadata", {}).get("labels") or {}
    wanted = {LABEL_MANAGED_BY: MANAGED_BY, **selector(app)}
    return all(labels.get(k) == v for k, v in wanted.items())


def namespace_labels(project: str) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_PROJECT: project}


def _meta(app: Application, extra: dict[str, str] | None = None) -> Manifest:
    labels = {**owner_labels(app), **(extra or {})}
    return {"name": app.name, "namespace": namespace_of(app), "labels": labels}


# ------------------------------------------------------------------------------ containers


def _probe(check: Healthcheck) -> Manifest:
    if check.http_get is not None:
        action: Manifest = {"httpGet": {"path": check.http_get.path, "port": check.http_get.port}}
    else:
        action = {"exec": {"command": list(check.command or [])}}
    return {
        **action,
        "periodSeconds": max(1, math.ceil(check.interval_seconds)),
        "timeoutSeconds": max(1, math.ceil(check.timeout_seconds)),
        "failureThreshold": check.retries,
        "initialDelaySeconds": math.ceil(check.start_period_seconds),
    }


def memory_quantity(amount: int) -> str:
    """Bytes as Kubernetes writes them: the largest binary suffix that divides them."""
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if amount % size == 0:
            return f"{amount // size}{suffix}"
    return str(amount)


def _resources(container: AppContainer) -> Manifest:
    amounts: dict[str, str] = {}
    if container.resources.cpu:
        amounts["cpu"] = f"{max(1, round(container.resources.cpu * 1000))}m"
    if container.resources.memory:
        amounts["memory"] = memory_quantity(container.resources.memory)
    return {"requests": amounts, "limits": dict(amounts)} if amounts else {}


def _container(container: AppContainer, index: int, default: Healthcheck | None) -> Manifest:
    if container.volumes:
        raise PermanentError(
            "Unsupported",
            f"spec.template.containers[{index}].volumes: not supported on kubernetes clusters",
        )
    out: Manifest = {"name": container.name, "image": container.image}
    optional = {
        "command": container.command,
        "args": container.args,
        "workingDir": container.workdir,
        "env": [{"name": e.name, "value": e.value} for e in container.env],
        "ports": [
            {"containerPort": p.container_port, "protocol": p.protocol.value}
            | ({"name": p.name} if p.name else {})
            for p in container.ports
        ],
        "resources": _resources(container),
    }
    out |= {key: value for key, value in optional.items() if value}
    if (check := container.healthcheck or default) is not None:
        out["readinessProbe"] = _probe(check)
        out["livenessProbe"] = _probe(check)
    return out


def _pod_template(app: Application, template: AppTemplate, revision: str) -> Manifest:
    default = app.spec.healthcheck
    node_selector: dict[str, str] = {}
    for c in template.containers:
        node_selector |= c.host_selector
    spec: Manifest = {
        "containers": [_container(c, i, default) for i, c in enumerate(template.containers)]
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    labels = {**template.labels, **owner_labels(app), LABEL_REVISION: revision}
    return {
        "metadata": {"labels": labels, "annotations": {LABEL_REVISION: revision}},
        "spec": spec,
    }


# ------------------------------------------------------------------------------ workloads


def _strategy(app: Application) -> Manifest:
    strategy = app.spec.update_strategy
    if strategy.type is StrategyType.RECREATE:
        return {"type": "Recreate"}
    rolling = strategy.rolling_update
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {
            "maxSurge": rolling.max_surge,
            "maxUnavailable": rolling.max_unavailable,
        },
    }


def deployment(app: Application, template: AppTemplate, revision: str) -> Manifest:
    strategy = app.spec.update_strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(app, {LABEL_REVISION: revision}),
        "spec": {
            "replicas": app.spec.replicas,
            "selector": {"matchLabels": selector(app)},
            "strategy": _strategy(app),
            "minReadySeconds": strategy.min_ready_seconds,
            "progressDeadlineSeconds": strategy.progress_deadline_seconds,
            "revisionHistoryLimit": REVISION_HISTORY,
            "template": _pod_template(app, template, revision),
        },
    }


def _service_port(index: int, port: Any, with_node_port: bool) -> Manifest:
    out: Manifest = {
        "name": f"p{index}-{port.port}",
        "port": port.port,
        "targetPort": port.target_port,
        "protocol": port.protocol.value,
    }
    if with_node_port and port.node_port is not None:
        out["nodePort"] = port.node_port
    return out


def service(app: Application, spec: AppService) -> Manifest:
    kube_type = _SERVICE_TYPES[spec.type]
    exposed = spec.type is not ServiceType.INTERNAL
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(app),
        "spec": {
            "type": kube_type,
            "selector": selector(app),
            "ports": [_service_port(i, p, exposed) for i, p in enumerate(spec.ports)],
        },
    }
