"""The ownership graph the garbage collector works from, kept from informer events.

Every informer's handler tells `OwnerIndex` of each change; it keeps, per record key, the
owner references the record carries and, per owner key, the keys of the records that name it.
It parses only values that mention `ownerReferences` (or a propagation finalizer), so most
changes cost a substring test. An owner reference names its owner by kind, name and uid; the
owner lives in the dependent's project when its kind is project-scoped, outside any project
when it is cluster-scoped. A reference whose kind is unknown, or that names a project-scoped
owner from a cluster-scoped record, cannot be resolved: it is never treated as gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zun_controller.engine.informer import Cached
from zun_controller.errors import InvalidError
from zun_controller.models.base import Scope, object_key
from zun_controller.models.deletion import FOREGROUND, ORPHAN
from zun_controller.models.registry import by_kind
from zun_controller.store.codec import load

#: the finalizers the garbage collector itself acts on
PROPAGATION_FINALIZERS = (FOREGROUND, ORPHAN)


@dataclass(frozen=True, slots=True)
class Ref:
    """One owner reference as stored, and the queue key of the owner it names (or None)."""

    kind: str
    name: str
    uid: str
    owner_key: str | None


def owner_key(kind: str, name: str, dependent_key: str) -> str | None:
    """The queue key of the owner `kind`/`name` of the record at `dependent_key`, or None
    when it cannot be resolved (unknown kind; a project-scoped owner of a cluster-scoped
    record)."""
    try:
        info = by_kind(kind).KIND
    except InvalidError:
        return None
    parts = dependent_key.split("/")
    if info.scope is Scope.CLUSTER:
        return object_key(info, name, None)
    if len(parts) != 3:
        return None
    return object_key(info, name, parts[1])


def refs_of(key: str, cached: Cached | None) -> tuple[Ref, ...]:
    """The owner references in a stored value; none when it is absent or not a record."""
    if cached is None or b"ownerReferences" not in cached.value:
        return ()
    try:
        meta = load(cached.value).get("metadata")
    except InvalidError:
        return ()
    raw = meta.get("ownerReferences") if isinstance(meta, dict) else None
    if not isinstance(raw, list):
        return ()
    return tuple(_ref(key, r) for r in raw if _well_formed(r))


def _well_formed(raw: object) -> bool:
    return isinstance(raw, dict) and all(
        isinstance(raw.get(f), str) and raw.get(f) for f in ("kind", "name", "uid")
    )


def _ref(key: str, raw: dict[str, str]) -> Ref:
    kind, name = raw["kind"], raw["name"]
    return Ref(kind, name, raw["uid"], owner_key(kind, name, key))


def mentions_propagation(cached: Cached | None) -> bool:
    """Whether a stored value may carry a propagation finalizer (a cheap over-estimate)."""
    return cached is not None and any(f.encode() in cached.value for f in PROPAGATION_FINALIZERS)


def _uid(cached: Cached) -> object:
    try:
        meta = load(cached.value).get("metadata")
    except InvalidError:
        return None
    return meta.get("uid") if isinstance(meta, dict) else None


def _owner_changed(old: Cached | None, new: Cached | None) -> bool:
    """Whether a change may matter to the dependents: the record went or came, is deleting
    (a foreground owner waits), or is another record (another uid) under the same key."""
    if old is None or new is None:
        return True
    if old is new:
        return False
    return b"deletionTimestamp" in new.value or _uid(old) != _uid(new)


class OwnerIndex:
    """Owner references by dependent key and dependent keys by owner key, for all kinds.

    `on_change` is an informer handler; `enqueue` is told every key whose garbage-collection
    state may have changed: the changed record when it carries owner references or may be
    finishing a propagation, its dependents when it came, went, is deleting or changed uid
    (not on its status writes), and the owners of the references it dropped (a foreground or
    orphaning owner may be waiting for that).
    """

    def __init__(self, enqueue: Callable[[str], None]) -> None:
        self._enqueue = enqueue
        self._refs: dict[str, tuple[Ref, ...]] = {}
        self._dependents: dict[str, set[str]] = {}

    def refs(self, key: str) -> tuple[Ref, ...]:
        return self._refs.get(key, ())

    def dependents(self, owner: str, uid: str) -> list[str]:
        """Keys of the records whose references name `owner` with this uid."""
        keys = self._dependents.get(owner, ())
        return sorted(k for k in keys if any(r.uid == uid for r in self.refs(k)))

    def on_change(self, key: str, old: Cached | None, new: Cached | None) -> None:
        before, after = self.refs(key), refs_of(key, new)
        self._reindex(key, before, after)
        if after and (after != before or old is None or old is new):
            self._enqueue(key)
        if mentions_propagation(new):
            self._enqueue(key)
        if key in self._dependents and _owner_changed(old, new):
            for dependent in sorted(self._dependents[key]):
                self._enqueue(dependent)
        for dropped in set(before) - set(after):
            if dropped.owner_key is not None:
                self._enqueue(dropped.owner_key)

    def _reindex(self, key: str, before: tuple[Ref, ...], after: tuple[Ref, ...]) -> None:
        if before == after:
            return
        for ref in before:
            if ref.owner_key is not None and ref.owner_key in self._dependents:
                self._dependents[ref.owner_key].discard(key)
                if not self._dependents[ref.owner_key]:
                    del self._dependents[ref.owner_key]
        for ref in after:
            if ref.owner_key is not None:
                self._dependents.setdefault(ref.owner_key, set()).add(key)
        if after:
            self._refs[key] = after
        else:
            self._refs.pop(key, None)
