"""Resource defaults, as a Kubernetes LimitRange's: in a project whose Quota limits cpu or
memory, a container without `resources.cpu` or `resources.memory` is given the policy's
default, which is both what it is charged and the limit it runs under (so it cannot run
unlimited while charged nothing). Projects without such a Quota are left as they are: there
is nothing to charge, and the scheduler's capacity filter counts requests as given.

Applied only where no running container changes because of it, so an upgrade of the
controller restarts nothing:
- A missing value first keeps the value the replaced record had (a writer that re-sends a
  spec without resources, such as a Git source, leaves the defaulted record as it is).
- A Container is defaulted only when it is created (its config hash covers resources).
- An Application's template containers are defaulted when the Application is created or its
  template changes (a template change rolls the replicas anyway); a replicas-only change of an
  Application made before defaults existed leaves its template, and its revision, as they were.
"""

from __future__ import annotations

from typing import TypeVar

from zun_controller.admission.policy import AdmissionPolicy
from zun_controller.models.application import Application
from zun_controller.models.base import Resource
from zun_controller.models.container import Container, ContainerTemplate, Resources

R = TypeVar("R", bound=Resource)


def with_defaults(obj: R, old: R | None, policy: AdmissionPolicy) -> R:
    """A copy of `obj` with missing resources filled as the module says."""
    out = obj.model_copy(deep=True)
    if isinstance(out, Container):
        before = old.spec.resources if isinstance(old, Container) else None
        _inherit(out.spec.resources, before)
        if old is None:
            _fill(out.spec, policy)
    elif isinstance(out, Application):
        was = (
            {c.name: c.resources for c in old.spec.template.containers}
            if isinstance(old, Application)
            else {}
        )
        for c in out.spec.template.containers:
            _inherit(c.resources, was.get(c.name))
        if not isinstance(old, Application) or out.spec.template != old.spec.template:
            for c in out.spec.template.containers:
                _fill(c, policy)
    return out


def _inherit(res: Resources, before: Resources | None) -> None:
    if before is None:
        return
    if res.cpu is None:
        res.cpu = before.cpu
    if res.memory is None:
        res.memory = before.memory


def _fill(c: ContainerTemplate, policy: AdmissionPolicy) -> None:
    if c.resources.cpu is None:
        c.resources.cpu = policy.default_cpu
    if c.resources.memory is None:
        c.resources.memory = policy.default_memory
