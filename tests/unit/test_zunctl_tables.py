"""`zunctl get` tables against golden files at 80 and 200 columns: columns sized to their
content, NAME never cut, only the last column cut, Events oldest first, Applications as
Deployments. `ZUN_UPDATE_GOLDEN=1` rewrites the files (then read the diff)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from zun_controller.cli.zunctl_output import Table
from zun_controller.cli.zunctl_table import render, terminal_width
from zun_controller.models.registry import lookup

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


def meta(name: str, project: str = "demo", created: str = "2026-12-04T11:00:00Z") -> dict[str, Any]:
    return {
        "name": name,
        "project": project,
        "creationTimestamp": created,
        "labels": {"tier": "web"},
    }


GITREPOS = [
    {
        "metadata": meta("production-apps-platform-team"),
        "spec": {"url": "https://git.example.org/platform/team/production-apps-configuration.git"},
        "status": {
            "phase": "Ready",
            "lastAppliedCommit": "0123456789abcdef0123456789abcdef01234567",
        },
    },
    {
        "metadata": meta("staging", created="2026-12-01T12:00:00Z"),
        "spec": {"url": "https://git.example.org/staging.git"},
        "status": {"phase": "Failed"},
    },
]

EVENTS = [
    {
        "metadata": meta("web.2"),
        "spec": {
            "involvedObject": {"kind": "Application", "name": "web"},
            "type": "Warning",
            "reason": "RolledBack",
            "message": "revision 0a1b2c3d4e failed (Unhealthy: replica web-0 unhealthy); "
            "rolled back to revision 9f8e7d6c5b",
            "count": 1,
            "firstTimestamp": "2026-12-04T11:58:00Z",
            "lastTimestamp": "2026-12-04T11:59:30Z",
        },
    },
    {
        "metadata": meta("web-0.1"),
        "spec": {
            "involvedObject": {"kind": "Container", "name": "web-0"},
            "type": "Normal",
            "reason": "Started",
            "message": "container zun_demo_web-0 started",
            "count": 3,
            "firstTimestamp": "2026-12-04T10:00:00Z",
            "lastTimestamp": "2026-12-04T11:00:00Z",
        },
    },
]

APPS = [
    {
        "metadata": meta("storefront-frontend"),
        "spec": {
            "cluster": "docker-local",
            "replicas": 3,
            "template": {"containers": [{"name": "web", "image": "zun-test/httpd:v2"}]},
        },
        "status": {
            "readyReplicas": 2,
            "updatedReplicas": 3,
            "availableReplicas": 2,
            "currentRevision": "0a1b2c3d4e",
            "endpoints": ["127.0.0.1:32768", "127.0.0.1:32769"],
        },
    },
    {
        "metadata": meta("db", project="other"),
        "spec": {
            "cluster": "swarm",
            "replicas": 1,
            "template": {"containers": [{"name": "db", "image": "postgres:16"}]},
        },
        "status": {},
    },
]

CASES = {
    "gitrepositories": ("GitRepository", GITREPOS),
    "events": ("Event", EVENTS),
    "applications": ("Application", APPS),
}


def check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("ZUN_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs; ZUN_UPDATE_GOLDEN=1 rewrites it"


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("variant", ["plain", "wide", "all"])
def test_table_golden(case: str, width: int, variant: str) -> None:
    kind, items = CASES[case]
    table = Table(lookup(kind), variant == "wide", variant == "all", width, NOW)
    lines = table.lines(items)
    check(f"{case}-{variant}-{width}", "\n".join(lines) + "\n")


def test_name_is_never_cut_even_when_the_line_is_too_long() -> None:
    lines = Table(lookup("GitRepository"), width=20, now=NOW).lines(GITREPOS)
    assert lines[1].startswith("production-apps-platform-team   Ready    0123456789ab   1h    ht…")
    assert lines[0].endswith("URL")


def test_events_oldest_first() -> None:
    lines = Table(lookup("Event"), width=None, now=NOW).lines(list(EVENTS))
    assert lines[0].split()[:3] == ["LAST", "SEEN", "TYPE"]
    assert [x.split()[3] for x in lines[1:]] == ["container/web-0", "application/web"]


def test_application_ready_and_endpoint() -> None:
    cells = Table(lookup("Application"), now=NOW).row(APPS[0])
    assert cells == [
        "storefront-frontend", "2/3", "3", "2", "docker-local",
        "127.0.0.1:32768 + 1 more...", "1h",
    ]  # fmt: skip


def test_render_cuts_only_the_last_column() -> None:
    rows = [["NAME", "MESSAGE"], ["a", "x" * 50]]
    assert render(rows, 20) == ["NAME   MESSAGE", "a      " + "x" * 12 + "…"]
    assert render(rows, None)[1] == "a      " + "x" * 50


def test_width_comes_from_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "93")
    assert terminal_width() == 93
    monkeypatch.setenv("COLUMNS", "wide")
    assert terminal_width() is None  # not a terminal under pytest, so never cut


def test_no_resources() -> None:
    assert Table(lookup("Container")).lines([]) == ["No resources found."]


def test_sort_by_keeps_its_order_for_events() -> None:
    lines = Table(lookup("Event"), now=NOW, ordered=True).lines(list(EVENTS))
    assert [x.split()[3] for x in lines[1:]] == ["application/web", "container/web-0"]
