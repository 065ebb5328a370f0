"""The installation's identity: one id per etcd store, shared by every replica.

Outside objects carry it (label `zun.openstack.org/instance`) so that two Zun installations
sharing a Docker engine never take each other's containers for orphans.
"""

from __future__ import annotations

import uuid

from zun_controller.store.kv import KV, Txn

KEY = "/zun/instance"


async def instance_id(kv: KV) -> str:
    """This store's installation id, made on first use."""
    found = await kv.get(KEY)
    if found is not None:
        return found.value.decode()
    await kv.commit(Txn(compares=[(KEY, 0)], puts=[(KEY, uuid.uuid4().hex[:16].encode())]))
    made = await kv.get(KEY)
    assert made is not None
    return made.value.decode()
