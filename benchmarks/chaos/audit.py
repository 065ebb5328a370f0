"""The auditor: the store against the engine, and the replicas' action logs against each other.

Findings are lists of names, so a report says exactly what is wrong; a clean audit has every
list empty.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from zun_controller.errors import InvalidError, NotFoundError
from zun_controller.models.application import Application
from zun_controller.models.base import LABEL_PROJECT, LABEL_UID, OwnerReference, Scope
from zun_controller.models.container import Container
from zun_controller.models.registry import by_kind, kinds
from zun_controller.reconcilers.app_docker_status import LABEL_ROLE
from zun_controller.reconcilers.app_revision import effective_template, revision_of
from zun_controller.store.records import RecordStore

#: what the engine may say for each desired state (a never-started container is stopped too)
ENGINE_STATUS = {"Running": ("running",), "Stopped": ("exited", "created")}


@dataclass(frozen=True)
class Desired:
    image: str
    state: str  # Running | Stopped


@dataclass(frozen=True)
class DesiredApp:
    image: str
    replicas: int
    cluster: str = "chaos"  # the docker Cluster; "swarm" for the main engine's Swarm


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unconverged: list[str] = field(default_factory=list)
    untruthful: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    #: records (any kind, `kind/name`) whose ownerReferences name an owner that is gone
    dangling_owners: list[str] = field(default_factory=list)
    overlapping_actions: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not any(vars(self).values())

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in vars(self).items()}


async def audit(
    store: RecordStore,
    *,
    engine: docker.DockerClient,
    swarm: docker.DockerClient,
    project: str,
    expected: dict[str, Desired],
    apps: dict[str, DesiredApp],
) -> Findings:
    """`engine` runs the Containers and the docker Cluster's replicas, `swarm` the services."""
    found = Findings()
    everything = {r.name: r for r in (await store.list(Container, project)).items}
    records = {n: r for n, r in everything.items() if not r.metadata.owner_references}
    found.lost = sorted(set(expected) - set(records))
    found.unexpected = sorted(set(records) - set(expected))
    outside = engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"{LABEL_PROJECT}={project}"}
    )
    by_uid: dict[str, list[Any]] = defaultdict(list)
    for c in outside:
        by_uid[c.labels.get(LABEL_UID, "")].append(c)
    uids = {r.metadata.uid for r in everything.values()}
    found.duplicates = sorted(u for u, cs in by_uid.items() if len(cs) > 1)
    found.orphans = sorted(c.name for c in outside if c.labels.get(LABEL_UID) not in uids)
    for name, want in expected.items():
        if (record := records.get(name)) is not None:
            _check(record, want, by_uid.get(record.metadata.uid or "", []), found)
    for record in everything.values():
        if record.metadata.owner_references and not record.metadata.deletion_timestamp:
            desired = Desired(record.spec.image, record.spec.state.value)
            _check(record, desired, by_uid.get(record.metadata.uid or "", []), found)
    live = {a.name: a for a in (await store.list(Application, project)).items}
    _check_apps(live, apps, everything, found)
    _check_services(swarm, project, live, apps, found)
    found.dangling_owners = await dangling_owners(store, project)
    return found


async def dangling_owners(store: RecordStore, project: str) -> list[str]:
    """`kind/name` of every record of the project (and cluster-scoped one) with an owner
    reference whose owner no longer exists with that uid; an unknown owner kind is not
    judged (the garbage collector never collects for it either)."""
    out = []
    for cls in kinds():
        scoped = cls.KIND.scope is Scope.PROJECT
        for record in (await store.list(cls, project if scoped else None)).items:
            for ref in record.metadata.owner_references:
                if await _owner_gone(store, ref, record.project):
                    out.append(f"{cls.KIND.kind}/{record.name}")
                    break
    return sorted(out)


async def _owner_gone(store: RecordStore, ref: OwnerReference, project: str | None) -> bool:
    try:
        cls = by_kind(ref.kind)
    except InvalidError:
        return False
    where = project if cls.KIND.scope is Scope.PROJECT else None
    if cls.KIND.scope is Scope.PROJECT and project is None:
        return False  # a cluster-scoped record cannot name a project-scoped owner
    try:
        owner = await store.get(cls, ref.name, where)
    except NotFoundError:
        return True
    return owner.metadata.uid != ref.uid


def _check_apps(
    live: dict[str, Application],
    apps: dict[str, DesiredApp],
    containers: dict[str, Container],
    found: Findings,
) -> None:
    found.lost += sorted(f"app/{n}" for n in set(apps) - set(live))
    found.unexpected += sorted(f"app/{n}" for n in set(live) - set(apps))
    for name, want in apps.items():
        app = live.get(name)
        if app is None or want.cluster == "swarm":
            continue
        revision = revision_of(effective_template(app))
        replicas = [
            c for c in containers.values()
            if any(ref.uid == app.metadata.uid for ref in c.metadata.owner_references)
            and c.metadata.labels.get(LABEL_ROLE) == "replica"
            and not c.metadata.deletion_timestamp
        ]  # fmt: skip
        st = app.status
        settled = (
            st.observed_generation == app.metadata.generation and st.current_revision == revision
        )
        if not settled or st.ready_replicas != want.replicas or len(replicas) != want.replicas:
            found.unconverged.append(f"app/{name}")
        elif any(c.spec.image != want.image for c in replicas):
            found.untruthful.append(f"app/{name}")


def _check_services(
    swarm: docker.DockerClient,
    project: str,
    live: dict[str, Application],
    apps: dict[str, DesiredApp],
    found: Findings,
) -> None:
    """Swarm Applications: one service each, at the replicas and image asked, its tasks running;
    no service of the project without a record."""
    services = swarm.services.list(filters={"label": f"{LABEL_PROJECT}={project}"})
    by_uid: dict[str, list[Any]] = defaultdict(list)
    for service in services:
        by_uid[service.attrs["Spec"].get("Labels", {}).get(LABEL_UID, "")].append(service)
    uids = {a.metadata.uid for a in live.values()}
    found.duplicates += sorted(f"service/{u}" for u, ss in by_uid.items() if len(ss) > 1)
    found.orphans += sorted(
        s.name for s in services if s.attrs["Spec"]["Labels"].get(LABEL_UID) not in uids
    )
    for name, want in apps.items():
        app = live.get(name)
        if app is None or want.cluster != "swarm":
            continue
        st = app.status
        revision = revision_of(effective_template(app))
        settled = (
            st.observed_generation == app.metadata.generation and st.current_revision == revision
        )
        outside = by_uid.get(app.metadata.uid or "", [])
        if not settled or st.ready_replicas != want.replicas or len(outside) != 1:
            found.unconverged.append(f"app/{name}")
            continue
        spec = outside[0].attrs["Spec"]
        running = [
            t for t in outside[0].tasks(filters={"desired-state": "running"})
            if t["Status"]["State"] == "running"
        ]  # fmt: skip
        image = spec["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
        if (
            spec["Mode"]["Replicated"]["Replicas"] != want.replicas
            or image != want.image
            or len(running) != want.replicas
        ):
            found.untruthful.append(f"app/{name}")


def _check(record: Container, want: Desired, outside: list[Any], found: Findings) -> None:
    status = record.status
    done = status.observed_generation == record.metadata.generation
    if record.spec.image != want.image or record.spec.state != want.state or not done:
        found.unconverged.append(record.name)
        return
    if status.phase != want.state or len(outside) != 1:
        found.unconverged.append(record.name)
        return
    real = outside[0]
    image = real.attrs["Config"]["Image"]
    if (
        status.container_id != real.id
        or real.status not in ENGINE_STATUS[want.state]
        or image != want.image
    ):
        found.untruthful.append(record.name)


def _actions(action_log: Path) -> list[dict[str, Any]]:
    if not action_log.exists():
        return []
    return [json.loads(line) for line in action_log.read_text().splitlines() if line.strip()]


def actions_taken(action_log: Path) -> tuple[int, int]:
    """How many reconciles the log holds, and by how many replica processes."""
    rows = _actions(action_log)
    return len(rows), len({r["who"] for r in rows})


def overlapping_actions(action_log: Path) -> list[str]:
    """Reconciles of two different replicas whose [start, end] intervals overlap."""
    rows = _actions(action_log)
    rows.sort(key=lambda r: r["start"])
    bad, latest_end, latest_who = [], 0.0, ""
    for row in rows:
        if row["who"] != latest_who and row["start"] < latest_end:
            bad.append(f"{latest_who} until {latest_end:.3f} vs {row['who']} at {row['start']:.3f}")
        if row["end"] > latest_end:
            latest_end, latest_who = row["end"], row["who"]
    return bad
