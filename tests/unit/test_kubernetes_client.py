"""Kubernetes API failures as the package's errors, and kubeconfigs that do not load: named
without quoting what the Secret holds. (The real API server's answers are in the e2e suite.)"""

from __future__ import annotations

import json

import pytest
import urllib3.exceptions
from kubernetes import client as kube

from zun_controller.drivers.orchestrators.kubernetes_client import api_client, translate
from zun_controller.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    TransientError,
    ZunError,
)


def api_error(status: int, **details: object) -> kube.ApiException:
    exc = kube.ApiException(status=status, reason="reason")
    exc.body = json.dumps({"kind": "Status", "message": "the message", "details": details})
    return exc


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, NotFoundError),
        (409, ConflictError),
        (429, TransientError),
        (500, TransientError),
        (503, TransientError),
        (403, PermanentError),
        (401, PermanentError),
    ],
)
def test_statuses(status: int, expected: type[ZunError]) -> None:
    assert type(translate(api_error(status), "get x")) is expected


def test_invalid_names_the_fields() -> None:
    causes = [{"field": "spec.ports[0].nodePort", "message": "Invalid value: 80"}]
    error = translate(api_error(422, causes=causes), "apply Service demo/web")
    assert isinstance(error, PermanentError) and error.reason == "InvalidSpec"
    assert error.message == "apply Service demo/web: spec.ports[0].nodePort: Invalid value: 80"


def test_a_namespace_being_deleted_is_a_conflict_to_retry() -> None:
    causes = [{"reason": "NamespaceTerminating", "field": "metadata.namespace", "message": "m"}]
    assert isinstance(translate(api_error(403, causes=causes), "apply"), ConflictError)


def test_unreachable_is_transient() -> None:
    refused = urllib3.exceptions.ProtocolError("Connection aborted")
    assert isinstance(translate(refused, "version"), TransientError)
    assert isinstance(translate(TimeoutError(), "version"), TransientError)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: b\nc: d: hunter2\n", "at line 2, column 5"),
        ("[1]", "not a mapping"),
        ("apiVersion: v1\nkind: Config\n", "current-context"),
        (
            "clusters: [{name: c, cluster: {server: 'https://x', "
            "certificate-authority-data: hunter2}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
            "binascii.Error",
        ),
    ],
)
def test_kubeconfigs_that_do_not_load_are_named_not_quoted(text: str, says: str) -> None:
    with pytest.raises(PermanentError) as caught:
        api_client(text)
    assert caught.value.reason == "InvalidConfig"
    assert says in caught.value.message and "hunter2" not in caught.value.message
