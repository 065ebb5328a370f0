"""Registry credentials of an Application on Kubernetes: a Secret of type
`kubernetes.io/dockerconfigjson` named `<app>-pull` in the app's namespace, labelled as the
app's other objects, server-side applied with the Deployment, referenced by its pod template's
`imagePullSecrets`, and deleted with the app (or when the template names no PullSecret any
more). Pure manifests here; `kubernetes.py` sends them. The password is in the Secret's data
only, never in a message.
"""

from __future__ import annotations

import base64
import json

from zun_controller.drivers.orchestrators.kubernetes_objects import Manifest, _meta
from zun_controller.drivers.runtime.base import RegistryAuth
from zun_controller.models.application import Application

SECRET_TYPE = "kubernetes.io/dockerconfigjson"


def pull_secret_name(app: Application) -> str:
    return f"{app.name[:58]}-pull"


def docker_config(auth: RegistryAuth) -> str:
    token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    entry = {"username": auth.username, "password": auth.password, "auth": token}
    return json.dumps({"auths": {auth.registry: entry}}, sort_keys=True)


def pull_secret(app: Application, auth: RegistryAuth) -> Manifest:
    meta = _meta(app)
    meta["name"] = pull_secret_name(app)
    encoded = base64.b64encode(docker_config(auth).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": SECRET_TYPE,
        "data": {".dockerconfigjson": encoded},
    }


def with_pull_secret(deploy: Manifest, app: Application) -> Manifest:
    """The Deployment manifest whose pods pull with the app's Secret."""
    deploy["spec"]["template"]["spec"]["imagePullSecrets"] = [{"name": pull_secret_name(app)}]
    return deploy
