"""`zunctl rollout` and `scale` decisions on Application records as the controller writes
them (revisions recorded by app_revision), and the shared argument parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from zun_controller.cli.zunctl_args import duration, target
from zun_controller.cli.zunctl_client import ZunctlError
from zun_controller.cli.zunctl_revisions import (
    RESTARTED_AT,
    history,
    pick_revision,
    progress,
    restarted,
    spec_revision,
    undone,
)
from zun_controller.models.application import Application
from zun_controller.reconcilers.app_revision import roll_back
from zun_controller.reconcilers.app_revision import target as revision_target

HEALTH = {"httpGet": {"port": 8080}}


def app(image: str = "zun-test/httpd:v1", replicas: int = 2) -> Application:
    return Application.model_validate(
        {
            "metadata": {"name": "web", "project": "demo", "generation": 1},
            "spec": {
                "cluster": "dk",
                "replicas": replicas,
                "healthcheck": HEALTH,
                "template": {"containers": [{"name": "httpd", "image": image}]},
            },
        }
    )


def upgraded() -> Application:
    """v1 rolled out, then the template changed to v2 (both revisions recorded)."""
    obj = app()
    revision_target(obj)
    obj.spec.template.containers[0].image = "zun-test/httpd:v2"
    obj.metadata.generation = 2
    revision_target(obj)
    return obj


def wire(obj: Application) -> dict[str, Any]:
    return obj.to_wire()


def settled(obj: Application) -> dict[str, Any]:
    obj.status.observed_generation = obj.metadata.generation
    n = obj.spec.replicas
    obj.status.replicas = obj.status.updated_replicas = n
    obj.status.ready_replicas = obj.status.available_replicas = n
    obj.status.set_condition(
        "Progressing", True, "RevisionAvailable", f"revision {obj.status.current_revision}"
    )
    return wire(obj)


def test_progress_waits_for_the_generation_then_the_replicas() -> None:
    obj = upgraded()
    obj.status.observed_generation = 1
    assert "spec update to be observed" in progress(wire(obj)).message
    obj.status.observed_generation = 2
    obj.status.replicas, obj.status.updated_replicas = 3, 1
    assert progress(wire(obj)).message.endswith("1 out of 2 new replicas have been updated...")
    done = progress(settled(obj))
    assert done.done and done.message == 'application "web" successfully rolled out'


def test_progress_fails_on_a_rollback() -> None:
    obj = upgraded()
    obj.status.observed_generation = 2
    failed = obj.status.current_revision or ""
    roll_back(obj, failed)
    obj.status.set_condition("RolledBack", True, "Unhealthy", f"revision {failed} failed")
    state = progress(wire(obj))
    assert not state.done and state.failed == f"rolled back: revision {failed} failed"


def test_history_lists_kept_revisions_oldest_first_with_images() -> None:
    obj = wire(upgraded())
    replica = {
        "metadata": {
            "labels": {"zun.openstack.org/revision": obj["status"]["currentRevision"]},
            "creationTimestamp": "2026-12-04T10:00:00Z",
        }
    }
    rows = history(obj, [replica])
    assert [(r.number, r.status, r.images) for r in rows] == [
        (1, "previous", ["zun-test/httpd:v1"]),
        (2, "current", ["zun-test/httpd:v2"]),
    ]
    assert rows[0].created is None and rows[1].created == "2026-12-04T10:00:00Z"


def test_undo_goes_back_to_the_previous_revision_with_its_own_hash() -> None:
    obj = wire(upgraded())
    rows = history(obj, [])
    row = pick_revision(rows, obj, None)
    assert row.number == 1
    back = undone(obj, row)
    container = back["spec"]["template"]["containers"][0]
    assert (container["name"], container["image"]) == ("httpd", "zun-test/httpd:v1")
    assert "healthcheck" not in container  # left to spec.healthcheck again
    assert spec_revision(back) == rows[0].name
    assert pick_revision(rows, obj, "2").name == rows[1].name
    assert pick_revision(rows, obj, rows[1].name).number == 2
    with pytest.raises(ValueError, match="--to-revision: no revision '7'"):
        pick_revision(rows, obj, "7")


def test_undo_of_a_held_back_spec_goes_to_the_running_revision() -> None:
    obj = upgraded()
    failed = obj.status.current_revision or ""
    roll_back(obj, failed)
    data = wire(obj)
    assert pick_revision(history(data, []), data, None).name == obj.status.current_revision


def test_undo_without_a_previous_revision_says_so() -> None:
    obj = app()
    revision_target(obj)
    with pytest.raises(ValueError, match="no previous revision"):
        pick_revision(history(wire(obj), []), wire(obj), None)


def test_restart_is_a_template_label_and_a_new_revision() -> None:
    obj = wire(upgraded())
    again = restarted(obj, datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC))
    assert again["spec"]["template"]["labels"] == {RESTARTED_AT: "20261204T010203Z"}
    assert spec_revision(again) != spec_revision(obj)
    Application.model_validate(again)  # a label value the model takes


def test_durations_and_targets() -> None:
    assert [duration(v) for v in ("90", "90s", "1.5m", "500ms", "1h")] == [90, 90, 90, 0.5, 3600]
    with pytest.raises(ZunctlError, match="--timeout: 'soon' is not a duration") as bad:
        duration("soon")
    assert bad.value.code == 2
    assert target("application/web", None, "u") == (Application, "web")
    assert target("app", "web", "u") == (Application, "web")
    with pytest.raises(ZunctlError, match="say which record: u"):
        target("application", None, "u")
