"""What Kubernetes reports, read back: a Deployment's status as an `AppObservation`, a Service's
addresses as endpoints, nodes as `ClusterInfo`. Pure functions over the API's JSON documents.
"""

from __future__ import annotations

from typing import Any

from zun_controller.drivers.orchestrators.base import AppObservation, ClusterInfo
from zun_controller.drivers.orchestrators.kubernetes_objects import LABEL_REVISION, Manifest
from zun_controller.models.quantity import parse_cpu, parse_memory

#: The Progressing condition's reason once a rollout passed progressDeadlineSeconds.
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
#: Node ports are published on every node; the test bed's (kwok) nodes all say 127.0.0.1.
NODE_ADDRESS = "127.0.0.1"


def _conditions(status: Manifest) -> dict[str, Manifest]:
    return {c.get("type", ""): c for c in status.get("conditions") or ()}


def template_revision(deploy: Manifest) -> str | None:
    labels = deploy["spec"]["template"].get("metadata", {}).get("labels") or {}
    revision: str | None = labels.get(LABEL_REVISION)
    return revision


def _failure(conditions: dict[str, Manifest]) -> str | None:
    progressing = conditions.get("Progressing", {})
    if progressing.get("status") == "False" and progressing.get("reason") == DEADLINE_EXCEEDED:
        return f"{DEADLINE_EXCEEDED}: {progressing.get('message', '')}".strip()
    failure = conditions.get("ReplicaFailure", {})
    if failure.get("status") == "True":
        return f"{failure.get('reason', 'ReplicaFailure')}: {failure.get('message', '')}"
    return None


def _message(status: Manifest, wanted: int) -> str:
    return (
        f"{status.get('readyReplicas', 0)}/{wanted} ready, "
        f"{status.get('updatedReplicas', 0)} updated, "
        f"{status.get('availableReplicas', 0)} available"
    )


def observation(deploy: Manifest, revision: str, endpoints: tuple[str, ...]) -> AppObservation:
    """The Deployment as the port reports it; `updated` and `failed` count only when the
    Deployment's template is at `revision` and its controller has seen the latest spec."""
    status: Manifest = deploy.get("status") or {}
    wanted = int(deploy["spec"].get("replicas", 0))
    seen = status.get("observedGeneration", 0) >= deploy["metadata"].get("generation", 0)
    at_revision = seen and template_revision(deploy) == revision
    conditions = _conditions(status)
    failed = _failure(conditions) if at_revision else None
    updated = int(status.get("updatedReplicas", 0)) if at_revision else 0
    replicas = int(status.get("replicas", 0))
    ready = int(status.get("readyReplicas", 0))
    done = at_revision and updated == wanted == replicas and ready == wanted
    return AppObservation(
        exists=True,
        replicas=replicas,
        ready=ready,
        updated=updated,
        available=int(status.get("availableReplicas", 0)),
        revision=template_revision(deploy),
        endpoints=endpoints,
        progressing=not done and failed is None,
        failed=failed,
        message=_message(status, wanted),
        extra={"progressing": conditions.get("Progressing", {}).get("reason", "")},
    )


def endpoints(svc: Manifest | None) -> tuple[str, ...]:
    """`clusterIP:port` per port, and `127.0.0.1:nodePort` for NodePort and LoadBalancer, plus
    load balancer ingress addresses when a cloud provider set them."""
    if svc is None:
        return ()
    spec, out = svc.get("spec") or {}, []
    cluster_ip = spec.get("clusterIP")
    for port in spec.get("ports") or ():
        if cluster_ip and cluster_ip != "None":
            out.append(f"{cluster_ip}:{port['port']}")
        if port.get("nodePort"):
            out.append(f"{NODE_ADDRESS}:{port['nodePort']}")
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    for entry in ingress:
        host = entry.get("ip") or entry.get("hostname")
        out.extend(f"{host}:{port['port']}" for port in spec.get("ports") or () if host)
    return tuple(out)


def _quantity(parse: Any, value: Any) -> float:
    try:
        return float(parse(value))
    except ValueError:
        return 0.0


def cluster_info(version: Manifest, nodes: Manifest) -> ClusterInfo:
    items = nodes.get("items") or []
    allocatable = [(n.get("status") or {}).get("allocatable") or {} for n in items]
    return ClusterInfo(
        version=str(version.get("gitVersion", "")),
        nodes=len(items),
        cpus=sum(_quantity(parse_cpu, a.get("cpu", 0)) for a in allocatable),
        memory=int(sum(_quantity(parse_memory, a.get("memory", 0)) for a in allocatable)),
    )
