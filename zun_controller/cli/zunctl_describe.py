"""`zunctl describe`: one record for people — metadata, spec, status, conditions, and the recent
Events about it (that record, by uid: not an earlier record of its name) when the Event kind
is there."""

from __future__ import annotations

import contextlib
from typing import Any

import yaml

from zun_controller.cli.zunctl_client import Client, path_of
from zun_controller.cli.zunctl_output import age, console
from zun_controller.errors import InvalidError
from zun_controller.models.base import Resource
from zun_controller.models.event import EventSpec, involves
from zun_controller.models.registry import lookup


def _block(title: str, data: Any) -> list[str]:
    if not data:
        return [f"{title}: <none>"]
    text = yaml.safe_dump(data, sort_keys=False).rstrip()
    return [f"{title}:", *("  " + line for line in text.splitlines())]


def describe(client: Client, cls: type[Resource], obj: dict[str, Any]) -> None:
    meta, status = obj.get("metadata", {}), dict(obj.get("status") or {})
    conditions = status.pop("conditions", [])
    lines = [
        f"Name:        {meta.get('name')}",
        f"Kind:        {cls.KIND.kind}",
    ]
    if meta.get("project"):
        lines.append(f"Project:     {meta['project']}")
    labels = ",".join(f"{k}={v}" for k, v in sorted(meta.get("labels", {}).items()))
    lines += [
        f"Labels:      {labels or '<none>'}",
        f"Created:     {meta.get('creationTimestamp')} ({age(meta.get('creationTimestamp'))} ago)",
        f"Generation:  {meta.get('generation')}  ResourceVersion: {meta.get('resourceVersion')}",
    ]
    if meta.get("deletionTimestamp"):
        lines.append(f"Deleting:    since {meta['deletionTimestamp']}")
    lines += _block("Spec", obj.get("spec")) + _block("Status", status)
    lines += _conditions(conditions) + _events(client, cls, meta)
    console.print("\n".join(lines), markup=False)


def _conditions(conditions: list[dict[str, Any]]) -> list[str]:
    if not conditions:
        return ["Conditions:  <none>"]
    out = ["Conditions:", "  TYPE                STATUS   REASON                MESSAGE"]
    for c in conditions:
        out.append(
            f"  {c.get('type', ''):<19} {c.get('status', ''):<8} "
            f"{c.get('reason', ''):<21} {c.get('message', '')}"
        )
    return out


def _events(client: Client, cls: type[Resource], meta: dict[str, Any]) -> list[str]:
    try:
        event_cls = lookup("Event")
    except InvalidError:
        return []
    project = meta.get("project") or "zun-system"
    kind, name, uid = cls.KIND.kind, str(meta.get("name")), meta.get("uid")
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    if uid:
        selector += f",involvedObject.uid={uid}"
    try:
        items = client.request(
            "GET", path_of(event_cls, project), params={"fieldSelector": selector}
        )["items"]
    except Exception:  # events are a courtesy: a describe does not fail for want of them
        return ["Events:      <unavailable>"]
    mine = []
    for item in items:
        with contextlib.suppress(ValueError):  # an Event this zunctl cannot read is left out
            spec = EventSpec.model_validate(item.get("spec"))
            if involves(spec.involved_object, kind, name, uid):
                mine.append(item["spec"])
    mine.sort(key=lambda s: str(s.get("lastTimestamp")))
    if not mine:
        return ["Events:      <none>"]
    out = ["Events:", "  TYPE     REASON               AGE    COUNT  MESSAGE"]
    for s in mine[-10:]:
        out.append(
            f"  {s.get('type', ''):<8} {s.get('reason', ''):<20} "
            f"{age(s.get('lastTimestamp')):<6} {s.get('count', 1):<6} {s.get('message', '')}"
        )
    return out
