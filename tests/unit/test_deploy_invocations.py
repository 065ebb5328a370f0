"""Every `zun-controller` invocation in deploy/ (compose, systemd units, kustomize) parses with
the CLI as it is today, and every ZUN_* variable they set is read by that command: an option
renamed in the code cannot leave a manifest that fails at start (or silently ignores a setting).
The kustomize manifests are also applied in e2e (server-side dry run); this needs no cluster."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from zun_controller.cli.controller import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


class Invocation:
    def __init__(self, where: str, args: list[str], env: set[str]) -> None:
        self.where, self.args, self.env = where, args, env

    def __repr__(self) -> str:
        return f"{self.where}: {shlex.join(self.args)}"


def _compose() -> Iterator[Invocation]:
    path = DEPLOY / "docker" / "compose.yaml"
    for name, service in yaml.safe_load(path.read_text())["services"].items():
        if str(service.get("image", "")).startswith("zun-controller"):
            env = set(service.get("environment") or [])
            yield Invocation(f"{path.name}:{name}", list(service["command"]), env)


def _systemd() -> Iterator[Invocation]:
    for path in sorted((DEPLOY / "docker" / "systemd").glob("*.service")):
        env: set[str] = set()
        args: list[str] = []
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "Environment":
                env |= {pair.split("=", 1)[0] for pair in shlex.split(value)}
            elif key == "ExecStart":
                command = shlex.split(value)
                assert command[0].endswith("/zun-controller"), path
                args = command[1:]
        yield Invocation(path.name, args, env)


def _kustomize() -> Iterator[Invocation]:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    shared = {
        literal.split("=", 1)[0]
        for generator in kustomization["configMapGenerator"]
        for literal in generator["literals"]
    }
    for resource in kustomization["resources"]:
        path = DEPLOY / "kubernetes" / resource
        for doc in yaml.safe_load_all(path.read_text()):
            pod: dict[str, Any] = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            for container in pod.get("containers", []):
                if container["image"] != "zun-controller":
                    continue
                env = {e["name"] for e in container.get("env", [])}
                if container.get("envFrom"):
                    env |= shared
                yield Invocation(f"{resource}:{container['name']}", container["args"], env)


INVOCATIONS = [*_compose(), *_systemd(), *_kustomize()]


def test_every_deploy_kind_has_invocations() -> None:
    wheres = {i.where.split(":")[0] for i in INVOCATIONS}
    assert {"compose.yaml", "zun-controller.service", "controller.yaml"} <= wheres
    assert len(INVOCATIONS) >= 6


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=repr)
def test_invocation_parses_and_its_variables_are_read(invocation: Invocation) -> None:
    group: Any = typer.main.get_command(app)
    parent = group.context_class(group)
    name, *rest = invocation.args
    command = group.get_command(parent, name)
    assert command is not None, f"{invocation}: no command {name!r}"
    # parsing checks option names, values and types without running the command
    command.make_context(name, list(rest), parent=parent)
    read = {
        var
        for param in command.params
        for var in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    }
    ignored = {v for v in invocation.env if v.startswith("ZUN_")} - read
    assert not ignored, f"{invocation}: {sorted(ignored)} are not read by `{name}`"
