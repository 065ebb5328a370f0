"""`GitRepository`: a repository of manifests that the controller applies, prunes and keeps."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from zun_controller.models.base import (
    DNSLabel,
    KindInfo,
    Model,
    Resource,
    Scope,
    Status,
    at_default,
)


class GitSecretRef(Model):
    """A `GitSecret` of the GitRepository's own project, by name."""

    name: DNSLabel


class GitRepositorySpec(Model):
    #: a clone URL git understands (file:// or a local path in tests); an http(s) URL holds
    #: no user or password: credentials live in the GitSecret `secret_ref` names
    url: str = Field(min_length=1)
    branch: str = "main"
    #: directory of the manifests inside the repository
    path: str = "."
    interval_seconds: float = Field(default=60.0, ge=1.0)
    #: delete records this repository made that its manifests no longer name
    prune: bool = True
    #: the credentials to fetch with (none: anonymous; never the controller's own)
    secret_ref: GitSecretRef | None = Field(default=None, exclude_if=at_default)

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        web = value.split("://", 1)[0].lower() in ("http", "https") and "://" in value
        if web and "@" in urlsplit(value).netloc:
            raise ValueError(
                "must not hold a user or password: put them in the GitSecret that "
                "spec.secretRef names"
            )
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a relative path inside the repository")
        return value


class GitRepositoryStatus(Status):
    last_applied_commit: str | None = None
    last_fetched_commit: str | None = None
    applied: list[str] = Field(default_factory=list)
    pruned: list[str] = Field(default_factory=list)
    drift_corrected: int = 0


class GitRepository(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="GitRepository",
        plural="gitrepositories",
        scope=Scope.PROJECT,
        short_names=["gitrepo"],
        columns=[
            ("Ready", ".status.phase"),
            ("Commit", ".status.lastAppliedCommit"),
            ("URL", ".spec.url"),
        ],
    )

    kind: Literal["GitRepository"] = "GitRepository"
    spec: GitRepositorySpec
    status: GitRepositoryStatus = Field(default_factory=GitRepositoryStatus)
