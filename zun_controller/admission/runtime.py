"""The OCI runtime of Containers and Application template containers: a project's runtime
(`Project.spec.runtime`, admin-set) as the default every writer gets, and the runtimes a writer
without admin rights may name. Pure: the caller reads the Project.

The runtime a write ends up with, per template container (`with_runtime`, every writer):

1. the runtime the write names;
2. else the one the replaced record had there (a writer that re-sends a spec without it, such
   as a Git source or the bridge, changes nothing; to go back to the engine's default an admin
   names it, `runc`);
3. else the project's runtime, but only on a Container's create and on an Application's create
   or template change, as resource defaults are filled (admission/defaults.py): a default
   never changes a running container or an Application's revision by itself, so setting or
   changing a project's runtime applies to containers created afterwards (Kubernetes'
   RuntimeClass applies to new pods only).

What a writer without admin rights may name (`refused`): the runtime the replaced record had
there, or the project's runtime; anything else is refused naming the field. A Host's runtime
(`Host.spec.runtime`) is not admission's: it applies to containers naming none where they are
created (reconcilers/container_config.py), and never replaces the runtime a record names.
"""

from __future__ import annotations

from typing import TypeVar

from zun_controller.admission.checks import templates
from zun_controller.errors import FieldError
from zun_controller.models.application import Application
from zun_controller.models.base import Resource
from zun_controller.models.container import Container, ContainerTemplate

R = TypeVar("R", bound=Resource)


def with_runtime(obj: R, old: R | None, project_runtime: str | None) -> R:
    """A copy of `obj` with each template container's runtime chosen as the module says."""
    out = obj.model_copy(deep=True)
    before = _before(old)
    for path, c in templates(out):
        was = before.get(_slot(path, c))
        if c.runtime is None and was is not None:
            c.runtime = was
    if project_runtime is not None and _takes_defaults(out, old):
        for _, c in templates(out):
            if c.runtime is None:
                c.runtime = project_runtime
    return out


def refused(obj: Resource, old: Resource | None, project_runtime: str | None) -> list[FieldError]:
    """The runtimes of `obj` a writer without admin rights may not name (`obj` already
    through `with_runtime`): each must be the replaced record's there, or the project's."""
    before = _before(old)
    return [
        FieldError(f"{path}.runtime", _reason(project_runtime))
        for path, c in templates(obj)
        if c.runtime not in (before.get(_slot(path, c)), project_runtime)
    ]


def _reason(project_runtime: str | None) -> str:
    if project_runtime is None:
        return "only an admin may set or change it"
    return f"the project runs containers under {project_runtime!r}; only an admin may name another"


def _takes_defaults(obj: Resource, old: Resource | None) -> bool:
    if isinstance(obj, Container):
        return old is None
    if isinstance(obj, Application):
        return not isinstance(old, Application) or obj.spec.template != old.spec.template
    return False


def _slot(path: str, c: ContainerTemplate) -> str:
    """Where a template container is matched with the replaced record's: by name in an
    Application (containers may be reordered), by path otherwise."""
    name = getattr(c, "name", None)
    return f"name:{name}" if name is not None else path


def _before(old: Resource | None) -> dict[str, str | None]:
    if old is None:
        return {}
    return {_slot(path, c): c.runtime for path, c in templates(old)}
