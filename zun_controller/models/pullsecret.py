"""`PullSecret`: registry credentials of one project, as a Docker config JSON.

Project-scoped, unlike the cluster-scoped, admin-only `Secret` that Clusters use: a project's
members write the credentials their own images need, and a Container or Application names
them in `spec.imagePullSecrets` (only within its project). `spec.data[".dockerconfigjson"]`
is the text of a `~/.docker/config.json` (`{"auths": {"host:port": {"auth": base64(user:pw)}}}`,
or `username` and `password` per entry), so a user can paste theirs; it is checked on write.
The values never appear in status, Events, logs or metric labels.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from zun_controller.models.base import KindInfo, Model, Resource, Scope

DOCKER_CONFIG_KEY = ".dockerconfigjson"


def registry_host(key: str) -> str:
    """An `auths` key as a registry host: scheme and path dropped, Docker Hub's names as one."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return "docker.io"
    return host


def _credentials(key: str, entry: Any) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise ValueError(f"auths[{key!r}] must be an object")
    if isinstance(entry.get("auth"), str):
        try:
            user, sep, password = (
                base64.b64decode(entry["auth"], validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"auths[{key!r}].auth is not base64 of user:password") from None
        if not sep:
            raise ValueError(f"auths[{key!r}].auth is not base64 of user:password")
        return user, password
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return entry["username"], entry["password"]
    raise ValueError(f"auths[{key!r}] needs auth, or username and password")


def parse_docker_config(text: str) -> dict[str, tuple[str, str]]:
    """Registry host -> (username, password); `ValueError` naming what is wrong."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{DOCKER_CONFIG_KEY} is not JSON: {exc.msg}") from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        raise ValueError(f"{DOCKER_CONFIG_KEY} needs an object `auths`")
    return {registry_host(key): _credentials(key, entry) for key, entry in auths.items()}


class PullSecretSpec(Model):
    #: required: a default would skip the check below, and the record stored without the key
    #: could not be read back (every list of the project's PullSecrets failed)
    data: dict[str, str]

    @field_validator("data")
    @classmethod
    def _docker_config(cls, data: dict[str, str]) -> dict[str, str]:
        if DOCKER_CONFIG_KEY not in data:
            raise ValueError(f"needs the key {DOCKER_CONFIG_KEY} (a Docker config JSON)")
        parse_docker_config(data[DOCKER_CONFIG_KEY])
        return data

    def credentials(self) -> dict[str, tuple[str, str]]:
        return parse_docker_config(self.data[DOCKER_CONFIG_KEY])


class PullSecret(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="PullSecret", plural="pullsecrets", scope=Scope.PROJECT, short_names=["psec"]
    )

    kind: Literal["PullSecret"] = "PullSecret"
    spec: PullSecretSpec
