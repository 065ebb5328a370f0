"""Which engine name holds a record's network or volume on one engine.

New objects are named `naming.engine_name` (`zun_<project>_<name>`). An object that an earlier
version made under `naming.legacy_name` (`zun-<project>-<name>`) keeps its name when it carries
the record's own labels (uid, project, kind, name): the containers already on it keep it, and
new ones join them there. A legacy name held by anything else is not ours and is never used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from zun_controller.drivers.runtime.base import Runtime
from zun_controller.models.base import LABEL_KIND, LABEL_NAME, LABEL_PROJECT
from zun_controller.models.network import Network, Volume
from zun_controller.reconcilers.naming import (
    MANAGED,
    default_network,
    default_network_labels,
    engine_name,
    labels_for,
    legacy_default_network,
    legacy_name,
)


@dataclass(frozen=True)
class Wanted:
    """An engine network or volume a record needs: its name, its legacy name, its labels
    (the ones an object must carry to be ours, and the ones a new object gets)."""

    kind: Literal["network", "volume"]
    name: str
    legacy: str
    labels: Mapping[str, str] = field(hash=False)


def default_network_wanted(project: str) -> Wanted:
    return Wanted(
        "network",
        default_network(project),
        legacy_default_network(project),
        default_network_labels(project),
    )


def network_wanted(project: str, name: str, record: Network | None) -> Wanted:
    """The Network record's engine network; without the record (deleted behind our back), the
    labels naming its project and name still pin down which object is ours."""
    return _wanted("network", "Network", project, name, record)


def volume_wanted(project: str, name: str, record: Volume | None) -> Wanted:
    return _wanted("volume", "Volume", project, name, record)


def _wanted(
    kind: Literal["network", "volume"],
    record_kind: str,
    project: str,
    name: str,
    record: Network | Volume | None,
) -> Wanted:
    if record is not None:
        labels = labels_for(record)
    else:
        labels = {**MANAGED, LABEL_KIND: record_kind, LABEL_PROJECT: project, LABEL_NAME: name}
    return Wanted(kind, engine_name(project, name), legacy_name(project, name), labels)


async def resolve(runtime: Runtime, wanted: Wanted) -> str:
    """The legacy name if an object of ours is there, else the new name (made or to make)."""
    if wanted.kind == "network":
        found = {n.name for n in await runtime.list_networks(wanted.labels)}
    else:
        found = {v.name for v in await runtime.list_volumes(wanted.labels)}
    return wanted.legacy if wanted.legacy in found else wanted.name


class EngineNames:
    """`resolve`, remembered per host: a name, once resolved, holds until `forget` (an object
    vanished; look again)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, Wanted], str] = {}

    async def get(self, host: str, runtime: Runtime, wanted: Wanted) -> str:
        key = (host, wanted)
        if key not in self._known:
            self._known[key] = await resolve(runtime, wanted)
        return self._known[key]

    def forget(self, host: str) -> None:
        self._known = {k: v for k, v in self._known.items() if k[0] != host}
