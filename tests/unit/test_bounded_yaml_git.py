"""Bounded YAML (aliases, depth, size) and git (URL policy, output and time bounds, environment)
on real git processes and the real parser."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from zun_controller.cli.zunctl_apply import read_manifests
from zun_controller.cli.zunctl_client import ZunctlError, _config_file
from zun_controller.errors import InvalidError, PermanentError, TransientError
from zun_controller.gitops.git import Mirror, git_env, run_git
from zun_controller.gitops.manifests import load_records
from zun_controller.gitops.policy import GitPolicy, url_scheme
from zun_controller.models.registry import parse
from zun_controller.models.safe_yaml import YamlLimits, brief, load_all, load_one

#: ~400 bytes that PyYAML's safe loader expands to 9**9 leaves
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_an_alias_bomb_is_refused_quickly_naming_the_file() -> None:
    started = time.monotonic()
    with pytest.raises(InvalidError) as caught:
        load_all("apiVersion: *i\n" + BOMB, "apps/bomb.yaml")
    assert time.monotonic() - started < 1.0
    assert caught.value.errors[0].path == "apps/bomb.yaml"
    assert "aliases" in caught.value.errors[0].reason


def test_a_merge_key_needs_an_alias_and_is_refused() -> None:
    with pytest.raises(InvalidError, match="aliases"):
        load_all("base: &b {x: 1}\nc:\n  <<: *b\n", "f.yaml")


def test_anchors_alone_and_plain_documents_load() -> None:
    assert load_all("a: &x 1\n---\n---\nb: [1, 2]\n", "f") == [{"a": 1}, {"b": [1, 2]}]
    assert load_one("", "f") is None


SMALL = YamlLimits(max_bytes=1000, max_documents=2, max_nodes=40)


@pytest.mark.parametrize(
    ("text", "limits", "says"),
    [
        ("[" * 100 + "]" * 100, YamlLimits(), "nested deeper than 64"),
        ("x: 1\n---\n" * 3, SMALL, "more than 2 documents"),
        ("[" + "1," * 50 + "1]", SMALL, "more than 40 nodes"),
        ("x" * 2000, SMALL, "larger than 1000 bytes"),
        ("a: [\n", SMALL, "not YAML: at line 2"),
    ],
)
def test_limits_are_errors_naming_the_source(text: str, limits: YamlLimits, says: str) -> None:
    with pytest.raises(InvalidError) as caught:
        load_all(text, "src", limits)
    assert caught.value.errors[0].path == "src"
    assert says in caught.value.errors[0].reason


def test_deep_nesting_past_the_interpreter_stack_is_an_error_not_a_crash() -> None:
    with pytest.raises(InvalidError, match="nested"):
        load_all("[" * 50_000, "deep")


def test_error_messages_quote_at_most_a_brief_value() -> None:
    with pytest.raises(InvalidError) as caught:
        parse({"apiVersion": "v" * 100_000, "kind": "Container"})
    assert len(str(caught.value)) < 300
    with pytest.raises(InvalidError) as caught:
        parse({"apiVersion": "zun.openstack.org/v1alpha1", "kind": "K" * 100_000})
    assert len(str(caught.value)) < 600
    assert brief(["x"] * 10) == "<list>"
    assert brief("ab") == "'ab'"


def test_gitops_manifests_with_a_bomb_apply_nothing_and_name_the_file() -> None:
    with pytest.raises(InvalidError) as caught:
        load_records({"ok.yaml": "kind: Container\n", "bomb.yaml": BOMB}, "demo", "site")
    assert any(e.path.startswith("bomb.yaml") for e in caught.value.errors)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("https://example.org/r.git", "https"),
        ("ssh://git@example.org/r.git", "ssh"),
        ("git@example.org:team/r.git", "ssh"),
        ("http://169.254.169.254/latest", "http"),
        ("file:///srv/repo", "file"),
        ("/srv/repo", "file"),
        ("./repo", "file"),
        ("ext::sh -c touch% /tmp/pwned", "ext::"),
        ("fd::17", "fd::"),
    ],
)
def test_urls_are_read_as_git_reads_them(url: str, scheme: str) -> None:
    assert url_scheme(url)[0] == scheme


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "/etc",
        "http://169.254.169.254/",
        "ext::sh -c id",
        "ssh://-oProxyCommand=id/x",
    ],
)
def test_the_default_policy_refuses_all_but_https_and_ssh(url: str) -> None:
    with pytest.raises(PermanentError) as caught:
        GitPolicy().check(url)
    assert caught.value.reason == "URLNotAllowed"
    assert caught.value.message.startswith("spec.url: ")


def test_an_admin_setting_allows_file_and_unknown_schemes_are_refused() -> None:
    GitPolicy.allowing("https,ssh,file").check("/srv/repo")
    assert GitPolicy.allowing("https,file").git_protocols == "file:https"
    with pytest.raises(ValueError, match="ext"):
        GitPolicy.allowing("https,ext")


def test_git_runs_with_nothing_of_the_controllers_own(tmp_path: Path) -> None:
    env = git_env(tmp_path / "home", GitPolicy())
    assert env["HOME"] == str(tmp_path / "home")
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert (
        "IdentityFile=none" in env["GIT_SSH_COMMAND"] and "-F /dev/null" in env["GIT_SSH_COMMAND"]
    )
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    assert "SSH_AUTH_SOCK" not in env


def _repo(path: Path, files: dict[str, str]) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}  # fmt: skip
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)


async def test_a_manifest_over_the_file_limit_is_too_large_not_read(tmp_path: Path) -> None:
    _repo(tmp_path / "r", {"big.yaml": "x: " + "y" * 5000 + "\n", "small.yaml": "a: 1\n"})
    policy = GitPolicy(schemes=frozenset({"file"}), max_file_bytes=1000)
    mirror = Mirror(tmp_path / "cache", f"file://{tmp_path / 'r'}", policy)
    commit = await mirror.fetch("main")
    with pytest.raises(PermanentError) as caught:
        await mirror.manifests(commit, ".")
    assert caught.value.reason == "TooLarge" and "big.yaml" in caught.value.message


async def test_a_refused_url_runs_no_git(tmp_path: Path) -> None:
    _repo(tmp_path / "r", {"a.yaml": "a: 1\n"})
    mirror = Mirror(tmp_path / "cache", str(tmp_path / "r"))
    with pytest.raises(PermanentError, match="URLNotAllowed"):
        await mirror.fetch("main")
    assert not mirror.dir.exists()


async def test_a_failed_fetch_does_not_quote_git(tmp_path: Path) -> None:
    mirror = Mirror(tmp_path / "cache", "https://127.0.0.1:9/nothing.git", GitPolicy(timeout=20.0))
    with pytest.raises(TransientError) as caught:
        await mirror.fetch("main")
    assert "refused" not in str(caught.value).lower() and "127.0.0.1" not in str(caught.value)


async def test_git_over_its_time_is_killed(tmp_path: Path) -> None:
    env = git_env(tmp_path, GitPolicy())
    env["GIT_PAGER"] = "cat"
    started = time.monotonic()
    with pytest.raises(TransientError, match="longer than"):
        # `git -c alias.s='!sleep 30' s` runs a shell: the only way to make git itself slow here
        await run_git("-c", "alias.s=!sleep 30", "s", env=env, limit=0.5, max_out=100)
    assert time.monotonic() - started < 5


def test_zunctl_apply_refuses_a_bomb_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB)
    with pytest.raises(ZunctlError) as caught:
        read_manifests(str(tmp_path / "bomb.yaml"), "demo")
    assert str(caught.value).startswith(f"{tmp_path / 'bomb.yaml'}: aliases")
    (tmp_path / "config.yaml").write_text("token: &t zun_x\nurl: *t\n")
    with pytest.raises(ZunctlError, match="aliases"):
        _config_file(tmp_path / "config.yaml")
