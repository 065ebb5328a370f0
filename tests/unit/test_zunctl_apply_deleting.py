"""`zunctl apply` on a record still being deleted: it waits for the record to go, then makes it
again, instead of writing to it (the manifest would go with it) or calling it unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from zun_controller.cli.zunctl_apply import Manifest, apply_one
from zun_controller.cli.zunctl_client import Client, ZunctlError
from zun_controller.models.container import Container

DOC: dict[str, Any] = {
    "apiVersion": "zun.openstack.org/v1alpha1",
    "kind": "Container",
    "metadata": {"name": "web", "project": "demo"},
    "spec": {"image": "zun-test/httpd:v1"},
}


class Api(Client):
    """The API as zunctl sees it: the live record (None: 404) after each GET, and every write."""

    def __init__(self, answers: list[dict[str, Any] | None]) -> None:
        self.answers, self.writes = answers, []  # type: ignore[var-annotated]

    def get(self, cls: Any, name: str, project: str | None) -> dict[str, Any] | None:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def request(self, method: str, path: str, **kw: Any) -> Any:
        self.writes.append((method, path))
        return kw.get("json", {})


def deleting() -> dict[str, Any]:
    meta = {**DOC["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": ["zun.openstack.org/runtime"]}  # fmt: skip
    return {**DOC, "metadata": meta}


def test_a_record_being_deleted_is_waited_for_then_created_again() -> None:
    api = Api([deleting(), deleting(), None])
    slept: list[float] = []
    line = apply_one(api, Manifest(Container, DOC, "web.yaml"), sleep=slept.append)
    assert line == "container.zun.openstack.org/web created"
    assert api.writes == [("POST", "/apis/zun.openstack.org/v1alpha1/projects/demo/containers")]
    assert len(slept) == 2


def test_a_record_still_being_deleted_after_the_wait_is_an_error_and_nothing_is_written() -> None:
    api = Api([deleting()])
    with pytest.raises(ZunctlError, match=r"still being deleted after 0s .*runtime"):
        apply_one(api, Manifest(Container, DOC, "web.yaml"), wait=0.0, sleep=lambda _: None)
    assert api.writes == []
