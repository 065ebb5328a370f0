"""Delete options, as Kubernetes' DeleteOptions: how a delete propagates to dependents.

- `Background` (the default): the record goes; the garbage collector then deletes the records
  whose ownerReferences name it.
- `Foreground`: the record stays, deleting, with the `foregroundDeletion` finalizer until the
  garbage collector has deleted its dependents and they are gone.
- `Orphan`: the record stays, deleting, with the `orphan` finalizer until the garbage collector
  has removed the references to it from its dependents; they stay.
"""

from __future__ import annotations

from enum import StrEnum

#: held by a record deleted in the foreground until its dependents are gone
FOREGROUND = "foregroundDeletion"
#: held by a record deleted with Orphan until its dependents no longer name it
ORPHAN = "orphan"


class PropagationPolicy(StrEnum):
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"
    ORPHAN = "Orphan"

    @property
    def finalizer(self) -> str | None:
        """The finalizer the delete adds, if any."""
        return {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(self.value)
