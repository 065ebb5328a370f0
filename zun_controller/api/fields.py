"""`fieldSelector` on lists, as Kubernetes' for Events: `involvedObject.kind=K`,
`involvedObject.name=N`, `involvedObject.uid=U` (`=` or `==`), comma-separated, every one
required to match. The uid term follows the Event rule (`models.event.involves`): an Event
of that name without a uid matches too. Any other field, operator or kind is a 422 naming
`fieldSelector`.
"""

from __future__ import annotations

from collections.abc import Callable

from zun_controller.errors import InvalidError
from zun_controller.models.base import Resource
from zun_controller.models.event import Event, involves

FIELDS = ("involvedObject.kind", "involvedObject.name", "involvedObject.uid")

Match = Callable[[Resource], bool]


def _terms(selector: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        field, sep, value = term.replace("==", "=", 1).partition("=")
        if not sep or field not in FIELDS:
            raise InvalidError.at(
                "fieldSelector", f"{term!r} is not one of {', '.join(f + '=' for f in FIELDS)}"
            )
        terms[field] = value
    return terms


def matcher(cls: type[Resource], selector: str | None) -> Match:
    """What a list answers given `fieldSelector`; everything when there is none."""
    if not selector:
        return lambda _: True
    if cls is not Event:
        raise InvalidError.at("fieldSelector", f"not supported on {cls.KIND.plural}")
    terms = _terms(selector)
    kind, name = terms.get(FIELDS[0]), terms.get(FIELDS[1])
    uid = terms.get(FIELDS[2]) or None

    def match(obj: Resource) -> bool:
        assert isinstance(obj, Event)
        ref = obj.spec.involved_object
        return involves(ref, kind or ref.kind, name or ref.name, uid)

    return match
