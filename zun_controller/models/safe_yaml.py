"""YAML the product reads from users (manifests, `zunctl apply -f`, config and kubeconfig files),
parsed with bounds so that a small hostile text cannot take a process down.

- Aliases (`*name`) are refused: PyYAML keeps an alias as a shared reference, so ~400 bytes of
  nested aliases become a tree of terabytes as soon as anything walks or formats it. Anchors
  alone are harmless and accepted; merge keys (`<<: *base`) need an alias and are refused too.
- A text is at most `YamlLimits.max_bytes` (1 MiB by default) before it is parsed, holds at most
  `max_documents` documents (1,000) of at most `max_nodes` nodes each (100,000), nested at most
  `max_depth` deep (64): deeper nesting would otherwise end in a `RecursionError`.
- Every failure is an `InvalidError` naming the source and the reason; no message quotes more
  than `brief`'s bound of the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import Node

from zun_controller.errors import FieldError, InvalidError

#: characters of a user's value an error message may quote
BRIEF_CHARS = 80


def brief(value: object, limit: int = BRIEF_CHARS) -> str:
    """`repr(value)` cut to `limit` characters (with `...` when cut); never walks far into a
    container: only strings, numbers and None are formatted, others by their type name."""
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value[: limit + 1] if isinstance(value, str) else value)
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class YamlLimits:
    max_bytes: int = 1024 * 1024
    max_documents: int = 1000
    max_nodes: int = 100_000
    max_depth: int = 64


class _TooBig(yaml.YAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and counts nodes and depth while composing."""

    limits = YamlLimits()

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_document(self) -> Node | None:
        self._nodes = 0
        node: Node | None = super().compose_document()
        return node

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise _TooBig(f"aliases (*name) are not accepted (line {mark.line + 1})")
        self._nodes += 1
        self._depth += 1
        try:
            if self._nodes > self.limits.max_nodes:
                raise _TooBig(f"a document has more than {self.limits.max_nodes} nodes")
            if self._depth > self.limits.max_depth:
                raise _TooBig(f"nested deeper than {self.limits.max_depth} levels")
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


def _loader(limits: YamlLimits) -> type[_BoundedLoader]:
    if limits == _BoundedLoader.limits:
        return _BoundedLoader
    return type("_Loader", (_BoundedLoader,), {"limits": limits})


def _message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, _TooBig):
        return str(exc)
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"not YAML: at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return f"not YAML: {type(exc).__name__}"


def load_all(text: str, source: str, limits: YamlLimits | None = None) -> list[Any]:
    """The non-empty documents of `text`; `InvalidError` at `source` when it is too big, uses
    an alias, nests too deep or is not YAML."""
    limits = limits or YamlLimits()
    if len(text.encode(errors="replace")) > limits.max_bytes:
        raise InvalidError([FieldError(source, f"larger than {limits.max_bytes} bytes")])
    loader = _loader(limits)(text)
    docs: list[Any] = []
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            if len(docs) >= limits.max_documents:
                raise _TooBig(f"more than {limits.max_documents} documents")
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
    except yaml.YAMLError as exc:
        raise InvalidError([FieldError(source, _message(exc))]) from None
    except RecursionError:
        raise InvalidError([FieldError(source, "nested too deep")]) from None
    finally:
        loader.dispose()
    return docs


def load_one(text: str, source: str, limits: YamlLimits | None = None) -> Any:
    """The single document of `text` (None when empty), bounded as `load_all`."""
    docs = load_all(text, source, limits)
    if len(docs) > 1:
        raise InvalidError([FieldError(source, "more than one YAML document")])
    return docs[0] if docs else None
