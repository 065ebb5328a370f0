"""A minimal kopf operator written for the bridge benchmark's comparison: a `BenchApp` custom
resource becomes a Deployment directly, with nothing in between (no store, no reconciler).

Run by benchmarks/bridge.py as `kopf run --standalone -n NAMESPACE benchmarks/kopf_baseline.py`.
"""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes import client, config

GROUP, VERSION, PLURAL = "bench.zun.openstack.org", "v1", "benchapps"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"kind": "BenchApp", "plural": PLURAL, "singular": "benchapp"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False
    config.load_kube_config()  # type: ignore[no-untyped-call]


@kopf.on.create(GROUP, VERSION, PLURAL)
def make_deployment(spec: kopf.Spec, name: str, namespace: str | None, **_: Any) -> None:
    labels = {"app": name}
    container = client.V1Container(name="web", image=spec["image"])
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels), spec=client.V1PodSpec(containers=[container])
    )
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=spec.get("replicas", 1),
            selector=client.V1LabelSelector(match_labels=labels),
            template=template,
        ),
    )
    client.AppsV1Api().create_namespaced_deployment(namespace or "default", deployment)
