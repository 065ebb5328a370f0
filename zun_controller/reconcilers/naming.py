"""Deterministic names and labels of what reconcilers create outside.

Names are deterministic so that a create repeated after a crash finds the first one (a
conflict, then adoption) instead of making a duplicate. Labels tie every outside object to
its record (`uid`), so a restarted controller adopts its own and removes its orphans, and
never touches what it did not make (`managed-by`).

Engine names join the project and the record's name with `_`, which neither can contain
(both are DNS-1123 labels): `zun_<project>_<name>` is one (project, name) pair only, and the
project's default network `zun_<project>` is nobody's record. Docker accepts `_` in container,
volume and network names, and Swarm in service names; where a name must fit a DNS label (a
Swarm service, at most 63 characters) `dns_label` keeps it readable and unique.

Objects made before this scheme are named `zun-<project>-<name>` (`legacy_name`), which two
projects can share (`acme` + `prod-data`, `acme-prod` + `data`). They are still used where
they are found carrying the record's own labels (engine_names), so an upgrade renames nothing.
"""

from __future__ import annotations

import hashlib

from zun_controller.models.base import (
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_UID,
    MANAGED_BY,
    Resource,
)

MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}
#: joins the parts of an engine name; no DNS-1123 label (project, record name) contains it
SEPARATOR = "_"
#: a DNS label's limit, which Swarm applies to service names
DNS_LABEL_MAX = 63
_DIGEST_CHARS = 16


def labels_for(obj: Resource) -> dict[str, str]:
    labels = {
        **MANAGED,
        LABEL_KIND: obj.KIND.kind,
        LABEL_NAME: obj.name,
        LABEL_UID: obj.metadata.uid or "",
    }
    if obj.project:
        labels[LABEL_PROJECT] = obj.project
    return labels


def kind_selector(kind: str) -> dict[str, str]:
    return {**MANAGED, LABEL_KIND: kind}


def engine_name(project: str, name: str) -> str:
    """The engine name of a project's record: distinct for every (project, name) pair."""
    return f"zun{SEPARATOR}{project}{SEPARATOR}{name}"


def legacy_name(project: str, name: str) -> str:
    """The name objects of a record got before `engine_name`; shared by some pairs, so
    only ever used when the object found there carries the record's labels."""
    return f"zun-{project}-{name}"


def dns_label(name: str) -> str:
    """`name` if it fits a DNS label, else its start and a digest of all of it (63 chars)."""
    if len(name) <= DNS_LABEL_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{name[: DNS_LABEL_MAX - _DIGEST_CHARS - 1]}{SEPARATOR}{digest}"


def container_name(project: str, name: str) -> str:
    return engine_name(project, name)


def network_name(project: str, name: str) -> str:
    return engine_name(project, name)


def volume_name(project: str, name: str) -> str:
    return engine_name(project, name)


def default_network(project: str) -> str:
    """Every project's containers share this network unless they name others; projects are
    isolated from each other because they are on different bridges."""
    return f"zun{SEPARATOR}{project}"


def legacy_default_network(project: str) -> str:
    return f"zun-{project}"


def default_network_labels(project: str) -> dict[str, str]:
    return {**MANAGED, LABEL_KIND: "Network", LABEL_PROJECT: project, LABEL_NAME: "default"}
