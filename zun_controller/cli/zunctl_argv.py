"""Global flags anywhere on the command line, as kubectl takes them.

`-p/--project` and `-o/--output` are options of each command: found anywhere (before the
command, between `rollout` and `status`, after an argument), `hoist` moves them to just after
the command's name, where its parser reads them whatever else the command takes. `--url` is
the root's (it names the API for every command): found anywhere, it is moved to the front.
Nothing after `--` is touched (what `exec` runs), and for a command that stops parsing at its
first argument (`exec NAME CMD...`) nothing after that argument is touched unless a `--`
comes later. A flag the command does not take stays the parser's error to report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: flags with a value, moved to after the command's name
COMMAND_FLAGS = frozenset({"-p", "--project", "-o", "--output"})
#: flags with a value, moved to the front (the root command takes them)
ROOT_FLAGS = frozenset({"--url"})


@dataclass(frozen=True)
class _Unknown:
    context_settings: dict[str, Any] = field(default_factory=dict)


_UNKNOWN = _Unknown()


@dataclass
class _Split:
    root: list[str] = field(default_factory=list)
    head: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)

    def joined(self) -> list[str]:
        return [*self.root, *self.head, *self.moved, *self.rest]


def _flag(argv: list[str], i: int) -> list[str]:
    """The flag at `i` with its value: one token (`-o=json`, `--url=X`) or two."""
    return argv[i : i + 1] if "=" in argv[i] else argv[i : i + 2]


def _interspersed(cmd: Any) -> bool:
    return bool(cmd.context_settings.get("allow_interspersed_args", True))


def hoist(argv: list[str], root: Any) -> list[str]:
    """`argv` with the global flags where the parsers read them (module docstring). `root`
    is the click group of the app: a group has `commands`, a command `context_settings`."""
    out, group = _Split(), root
    command: Any = None
    protected = len(argv) if "--" not in argv else argv.index("--")
    i = 0
    while i < protected:
        tok, name = argv[i], argv[i].split("=", 1)[0]
        if name in ROOT_FLAGS or name in COMMAND_FLAGS:
            chunk = _flag(argv, i)
            (out.root if name in ROOT_FLAGS else out.moved).extend(chunk)
            i += len(chunk)
            continue
        if command is None:
            out.head.append(tok)
            if not tok.startswith("-"):
                found = group.commands.get(tok)
                if hasattr(found, "commands"):
                    group = found
                else:
                    command = found or _UNKNOWN  # the parser says it is unknown
        elif tok.startswith("-") or _interspersed(command) or protected < len(argv):
            out.rest.append(tok)
        else:
            break
        i += 1
    out.rest.extend(argv[i:])
    return out.joined()
