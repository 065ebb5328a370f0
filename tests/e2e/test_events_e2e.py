"""Events belong to an object, not a name, seen as a user sees them: `zunctl describe` of a
Container made again under a deleted one's name shows none of the deleted one's Events."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed.docker import MAIN_SOCKET_URL, ensure_dockerd
from zunctl_bed import AllInOne, zunctl

from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def up(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[AllInOne]:
    ensure_dockerd()
    aio = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL)
    yield aio
    aio.stop()


def _manifest(image: str) -> str:
    """A Container whose image no engine has: its Events name the image, and nothing runs on
    the shared engine."""
    return f"""\
apiVersion: zun.openstack.org/v1alpha1
kind: Container
metadata: {{name: web}}
spec: {{image: "{image}"}}
"""


def _events_section(up: AllInOne, project: str, want: str, within: float = 60.0) -> str:
    deadline = time.monotonic() + within
    while True:
        described = zunctl(up.url, up.token, project, "describe", "ctr", "web")
        events = described.stdout.split("\nEvents:", 1)[-1]
        if want in events or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


@pytest.mark.timeout(180)
def test_a_record_made_again_under_an_old_name_has_none_of_its_events(up: AllInOne) -> None:
    project = f"ev{secrets.token_hex(3)}"
    first, second = f"zun-test/absent-{project}:one", f"zun-test/absent-{project}:two"
    made = zunctl(up.url, up.token, project, "apply", "-f", "-", stdin=_manifest(first))
    assert made.returncode == 0, made.stderr
    assert first in _events_section(up, project, first)
    gone = zunctl(up.url, up.token, project, "delete", "ctr", "web", "--wait")
    assert gone.returncode == 0, gone.stderr
    again = zunctl(up.url, up.token, project, "apply", "-f", "-", stdin=_manifest(second))
    assert again.returncode == 0, again.stderr
    events = _events_section(up, project, second)
    assert second in events
    assert first not in events, f"the deleted record's Events are shown:\n{events}"
    listed = zunctl(up.url, up.token, project, "get", "events", "-o", "json")
    assert first in listed.stdout, "the deleted record's Events are gone, not hidden"
