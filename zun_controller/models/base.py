"""The envelope every kind shares: apiVersion, kind, metadata, spec, status.

Field names are snake_case in Python and camelCase on the wire (JSON, YAML, CRDs), as in
Kubernetes. Every model forbids unknown fields so a typo is an error naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "zun.openstack.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
DOMAIN = GROUP

#: labels on everything Zun creates outside, so a restarted controller finds its own
LABEL_MANAGED_BY = f"{GROUP}/managed-by"
MANAGED_BY = "zun-controller"
LABEL_UID = f"{GROUP}/uid"
LABEL_PROJECT = f"{GROUP}/project"
LABEL_NAME = f"{GROUP}/name"
LABEL_KIND = f"{GROUP}/kind"
LABEL_CONFIG_HASH = f"{GROUP}/config-hash"
#: which Zun installation (one etcd store) made it: orphan sweeps never touch another's
LABEL_INSTANCE = f"{GROUP}/instance"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _dns1123_label(value: str) -> str:
    if len(value) > 63:
        raise ValueError("must be at most 63 characters")
    if not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            "must be a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if len(key) > 316 or not _QUALIFIED_KEY.fullmatch(key):
            raise ValueError(f"label key {key!r} is not a qualified name ([prefix/]name)")
        if len(val) > 63 or not _LABEL_VALUE.fullmatch(val):
            raise ValueError(f"label value {val!r} of {key!r} is not a valid label value")
    return value


#: what `_dns1123_label` accepts, as JSON schema (the OpenAPI document's and the CRDs')
DNS_LABEL_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": _DNS1123_LABEL.pattern,
}
#: what `_labels` accepts, as JSON schema (`propertyNames` is not a CRD keyword: models/crd.py)
LABELS_SCHEMA = {
    "type": "object",
    "propertyNames": {"maxLength": 316, "pattern": _QUALIFIED_KEY.pattern},
    "additionalProperties": {"type": "string", "maxLength": 63, "pattern": _LABEL_VALUE.pattern},
}

DNSLabel = Annotated[str, AfterValidator(_dns1123_label), WithJsonSchema(DNS_LABEL_SCHEMA)]
Labels = Annotated[dict[str, str], AfterValidator(_labels), WithJsonSchema(LABELS_SCHEMA)]


class Model(BaseModel):
    """Base of every record part: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )


def at_default(value: object) -> bool:
    """`exclude_if` of a field added after the first release: a field at its default (None,
    empty, zero) is left out of what is stored and served, so a record the controller writes
    stays readable by the release before it (which rejects fields it does not know) and a
    rollback of the controller reads every record it wrote."""
    return value is None or value in ([], {}, 0)


class OwnerReference(Model):
    api_version: str = API_VERSION
    kind: str
    name: DNSLabel
    uid: str
    controller: bool = True


class ObjectMeta(Model):
    name: DNSLabel
    project: DNSLabel | None = None
    uid: str | None = None
    generation: int = 0
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)
    deletion_timestamp: datetime | None = None
    owner_references: list[OwnerReference] = Field(default_factory=list)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class Status(Model):
    """What every kind's status has; kinds extend it."""

    observed_generation: int = 0
    phase: str = ""
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def set_condition(
        self,
        type_: str,
        status: bool | ConditionStatus,
        reason: str = "",
        message: str = "",
        *,
        now: datetime | None = None,
    ) -> None:
        """Set a condition; its lastTransitionTime moves only when its status changes."""
        value = (
            status
            if isinstance(status, ConditionStatus)
            else (ConditionStatus.TRUE if status else ConditionStatus.FALSE)
        )
        old = self.condition(type_)
        when = old.last_transition_time if old is not None and old.status == value else None
        when = when or now or datetime.now(UTC).replace(microsecond=0)
        new = Condition(
            type=type_, status=value, reason=reason, message=message, last_transition_time=when
        )
        self.conditions = [c for c in self.conditions if c.type != type_] + [new]

    def is_true(self, type_: str) -> bool:
        cond = self.condition(type_)
        return cond is not None and cond.status == ConditionStatus.TRUE


class Scope(StrEnum):
    PROJECT = "Project"
    CLUSTER = "Cluster"


class KindInfo(Model):
    """Static facts about a kind: its names, where its keys live, its short names."""

    kind: str
    plural: str
    scope: Scope
    short_names: list[str] = Field(default_factory=list)
    #: printer columns for tables and CRDs: (header, JSON path under the record)
    columns: list[tuple[str, str]] = Field(default_factory=list)


class Resource(Model):
    """A record: `Kind` subclasses narrow `spec` and `status` and set `KIND`."""

    KIND: ClassVar[KindInfo]

    api_version: Literal["zun.openstack.org/v1alpha1"] = "zun.openstack.org/v1alpha1"
    kind: str
    metadata: ObjectMeta
    spec: Any = None
    status: Status = Field(default_factory=Status)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def project(self) -> str | None:
        return self.metadata.project

    @property
    def key(self) -> str:
        """`plural/project/name` or `plural/name`: the workqueue key of this record."""
        return object_key(self.KIND, self.metadata.name, self.metadata.project)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def object_key(info: KindInfo, name: str, project: str | None) -> str:
    if info.scope is Scope.PROJECT:
        return f"{info.plural}/{project}/{name}"
    return f"{info.plural}/{name}"
