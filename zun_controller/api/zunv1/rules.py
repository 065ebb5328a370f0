"""Which actions each Zun status allows (upstream's `VALID_STATES`), and the spec each
imperative action writes. An action outside its statuses is 409 with Zun's message."""

from __future__ import annotations

from zun_controller.api.zunv1.errors import invalid_state
from zun_controller.api.zunv1.view import status_of
from zun_controller.models.container import Container

ALL = ("Created", "Creating", "Running", "Stopped", "Paused", "Error", "Deleting")
VALID = {
    "start": ("Created", "Stopped", "Error"),
    "stop": ("Running",),
    "reboot": ("Created", "Running", "Stopped", "Error"),
    "rebuild": ("Created", "Running", "Stopped", "Error"),
    "pause": ("Running",),
    "unpause": ("Paused",),
    "kill": ("Running",),
    "execute": ("Running",),
    "update": ("Created", "Running", "Stopped", "Paused"),
    "rename": ("Created", "Running", "Stopped", "Paused", "Error"),
    "top": ("Running",),
    "stats": ("Running",),
    "logs": ("Created", "Error", "Paused", "Running", "Stopped"),
    "delete": ("Created", "Error", "Stopped"),
    "delete_after_stop": ("Running", "Created", "Error", "Stopped"),
    "delete_force": ALL,
}


def check(action: str, obj: Container) -> None:
    status = status_of(obj)
    if status not in VALID[action]:
        verb = "delete" if action.startswith("delete") else action
        raise invalid_state(verb, obj.metadata.uid or obj.name, status)
