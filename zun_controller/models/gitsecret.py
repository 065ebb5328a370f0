"""`GitSecret`: the credentials one project's GitRepositories fetch with, as Flux's Secret of
a GitRepository holds them.

Project-scoped, like `PullSecret` and unlike the cluster-scoped, admin-only `Secret` that
Clusters use: a project's members write the credentials of their own repositories, and a
GitRepository names one in `spec.secretRef` (looked up only in the GitRepository's own
project, so no tenant can have another's credentials sent anywhere). Keys of `spec.data`:

- `username` and `password` (both, or neither): https basic auth (a token as the password);
- `identity`: an OpenSSH or PEM private key without a passphrase, for ssh;
- `known_hosts`: the ssh server's host keys, as in `~/.ssh/known_hosts`; an ssh URL needs them
  (a host key is never accepted unseen);
- `identity.pub`: accepted and unused (Flux writes it).

The values never appear in status, Events, logs or metric labels, and validation errors name
the key, never the value.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from zun_controller.models.base import KindInfo, Model, Resource, Scope

USERNAME, PASSWORD, IDENTITY, KNOWN_HOSTS = "username", "password", "identity", "known_hosts"
KEYS = frozenset({USERNAME, PASSWORD, IDENTITY, KNOWN_HOSTS, "identity.pub"})


def _check(data: dict[str, str]) -> None:
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; known: {sorted(KEYS)}")
    if (USERNAME in data) != (PASSWORD in data):
        raise ValueError("username and password go together")
    for key in (USERNAME, PASSWORD):
        value = data.get(key)
        if value is not None and (not value or any(c in value for c in "\n\r\0")):
            raise ValueError(f"{key} must be one non-empty line")
    if IDENTITY in data and "PRIVATE KEY-----" not in data[IDENTITY]:
        raise ValueError("identity must be a private key (-----BEGIN ... PRIVATE KEY-----)")
    if KNOWN_HOSTS in data and not data[KNOWN_HOSTS].strip():
        raise ValueError("known_hosts must not be empty")


class GitSecretSpec(Model):
    data: dict[str, str] = Field(default_factory=dict)

    @field_validator("data")
    @classmethod
    def _credentials(cls, data: dict[str, str]) -> dict[str, str]:
        _check(data)
        return data


class GitSecret(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="GitSecret", plural="gitsecrets", scope=Scope.PROJECT, short_names=["gsec"]
    )

    kind: Literal["GitSecret"] = "GitSecret"
    spec: GitSecretSpec = Field(default_factory=GitSecretSpec)
