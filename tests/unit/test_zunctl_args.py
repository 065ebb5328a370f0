"""The command line's global flags anywhere (`hoist`), `-o jsonpath=` and `--sort-by`."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main

from zun_controller.cli.zunctl import app
from zun_controller.cli.zunctl_argv import hoist
from zun_controller.cli.zunctl_jsonpath import JsonPathError, render, sort_key

ROOT = typer.main.get_command(app)


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("-p demo get ctr", "get -p demo ctr"),
        ("get -p demo ctr", "get -p demo ctr"),
        ("get ctr -o json -p demo", "get -o json -p demo ctr"),
        ("--project=demo -o=name get ctr", "get --project=demo -o=name ctr"),
        ("rollout -p demo status app/web", "rollout status -p demo app/web"),
        ("get ctr --url http://127.0.0.1:1", "--url http://127.0.0.1:1 get ctr"),
        ("exec -p demo web -- ls -p x", "exec -p demo web -- ls -p x"),
        ("exec web -p demo -- ls -o", "exec -p demo web -- ls -o"),
        ("exec web ls -p x", "exec web ls -p x"),
        ("-p demo nosuch thing", "nosuch -p demo thing"),
        ("--help", "--help"),
    ],
)
def test_hoist(given: str, parsed: str) -> None:
    assert hoist(given.split(), ROOT) == parsed.split()


LIST: dict[str, Any] = {
    "items": [
        {"metadata": {"name": "b"}, "status": {"phase": "Running", "restartCount": 10}},
        {"metadata": {"name": "a"}, "status": {"phase": "Error", "restartCount": 9}},
        {"metadata": {"name": "c"}},
    ]
}


def test_jsonpath_subset() -> None:
    assert render("{.items[*].metadata.name}", LIST) == "b a c"
    assert render("{.items[0].status.phase}", LIST) == "Running"
    assert render("{.metadata.name}={.status.phase}", LIST["items"][1]) == "a=Error"
    assert render("{.status.phase}", LIST["items"][2]) == ""  # missing: nothing
    assert render("{.items[1].metadata}", LIST) == '{"name": "a"}'


@pytest.mark.parametrize(
    "bad", ["{.items[?(@.x)]}", "{..name}", "{range .items[*]}", "{metadata}", "{.a"]
)
def test_jsonpath_outside_the_subset(bad: str) -> None:
    with pytest.raises(JsonPathError):
        render(bad, LIST)


def test_sort_by_numbers_then_text_missing_first() -> None:
    by_count = sorted(LIST["items"], key=sort_key(".status.restartCount"))
    assert [o["metadata"]["name"] for o in by_count] == ["c", "a", "b"]
    by_name = sorted(LIST["items"], key=sort_key("{.metadata.name}"))
    assert [o["metadata"]["name"] for o in by_name] == ["a", "b", "c"]
