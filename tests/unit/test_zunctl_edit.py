"""`zunctl label`/`annotate` changes, JSON patches (RFC 6902) and `wait --for` as parsed."""

from __future__ import annotations

from typing import Any

import pytest

from zun_controller.cli.zunctl_client import ZunctlError
from zun_controller.cli.zunctl_edit import until
from zun_controller.cli.zunctl_patch import PatchError, changes, json_patch, meta_patch

RECORD: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"tier": "front"}, "resourceVersion": "7"},
    "spec": {"image": "a:1", "env": [{"name": "A", "value": "1"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
}


def test_label_changes() -> None:
    assert changes(["a=1", "b-", "c="], "label") == {"a": "1", "b": None, "c": ""}
    for bad, says in (
        (["nope"], "neither key=value nor key-"),
        (["=1"], "has no key"),
        ([], "at least one"),
    ):
        with pytest.raises(PatchError, match=says):
            changes(bad, "label")


def test_overwrite_is_asked_for() -> None:
    live = {"tier": "front"}
    assert meta_patch(live, {"tier": "front", "x": None}, "labels", False) == {
        "metadata": {"labels": {"tier": "front", "x": None}}
    }
    with pytest.raises(PatchError, match="'tier' already has the value 'front'; --overwrite"):
        meta_patch(live, {"tier": "back"}, "labels", False)
    assert meta_patch(live, {"tier": "back"}, "labels", True)["metadata"]["labels"] == {
        "tier": "back"
    }


def test_json_patch_operations() -> None:
    ops = [
        {"op": "replace", "path": "/spec/image", "value": "a:2"},
        {"op": "add", "path": "/spec/env/-", "value": {"name": "B", "value": "2"}},
        {"op": "add", "path": "/spec/env/0", "value": {"name": "Z", "value": "0"}},
        {"op": "remove", "path": "/metadata/labels/tier"},
        {"op": "copy", "from": "/spec/image", "path": "/metadata/annotations"},
        {"op": "test", "path": "/spec/image", "value": "a:2"},
    ]
    out = json_patch(RECORD, ops)
    assert out["spec"] == {
        "image": "a:2",
        "env": [
            {"name": "Z", "value": "0"},
            {"name": "A", "value": "1"},
            {"name": "B", "value": "2"},
        ],
    }
    assert out["metadata"]["labels"] == {} and out["metadata"]["annotations"] == "a:2"
    assert RECORD["spec"]["image"] == "a:1"  # the record read is not changed


@pytest.mark.parametrize(
    ("ops", "says"),
    [
        ({"op": "add"}, "a list of operations"),
        (
            [{"op": "replace", "path": "/status/phase", "value": "x"}],
            "'/status/phase' cannot be changed",
        ),
        ([{"op": "remove", "path": "/spec/nope"}], "operation 0: no 'nope' there"),
        ([{"op": "test", "path": "/spec/image", "value": "b"}], "test of '/spec/image' failed"),
        ([{"op": "frob", "path": "/spec/image"}], "unknown op 'frob'"),
        ([{"op": "add", "path": "/spec/env/9", "value": 1}], "out of range"),
        ([{"op": "add", "path": "spec"}], "JSON pointer"),
    ],
)
def test_json_patch_errors_name_the_operation(ops: Any, says: str) -> None:
    with pytest.raises(PatchError, match=says):
        json_patch(RECORD, ops)


def test_wait_for() -> None:
    assert until("delete").met(None) and not until("delete").met(RECORD)
    assert until("condition=Ready").met(RECORD)
    assert not until("condition=Ready=False").met(RECORD)
    assert until("jsonpath={.status.phase}=Running").met(RECORD)
    assert not until("condition=Ready").met(None)
    for bad in ("ready", "condition=", "jsonpath=.status.phase", "jsonpath={..x}=1"):
        with pytest.raises(ZunctlError, match="--for") as got:
            until(bad)
        assert got.value.code == 2
