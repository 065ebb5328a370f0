"""`RuntimePool`: one `Runtime` client per Host, made from the Host's endpoint and kept until
the endpoint changes or the Host goes; and per-host locks for idempotent ensures that the
engine does not make atomic (Docker lets two concurrent creates make two networks of one
name)."""

from __future__ import annotations

import asyncio

from zun_controller.drivers.runtime.base import Runtime, RuntimeFactory
from zun_controller.models.host import Host


class RuntimePool:
    def __init__(self, factory: RuntimeFactory) -> None:
        self._factory = factory
        self._clients: dict[str, tuple[str, Runtime]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def guard(self, host: str, name: str) -> asyncio.Lock:
        """One lock per (host, outside object name), for check-then-create sequences."""
        return self._locks.setdefault((host, name), asyncio.Lock())

    def for_host(self, host: Host) -> Runtime:
        endpoint = host.spec.endpoint
        tls = host.spec.tls
        fingerprint = f"{endpoint}|{tls.model_dump_json() if tls else ''}"
        known = self._clients.get(host.name)
        if known and known[0] == fingerprint:
            return known[1]
        tls_files = {"ca": tls.ca_file, "cert": tls.cert_file, "key": tls.key_file} if tls else None
        runtime = self._factory(host.name, endpoint, tls=tls_files)
        self._clients[host.name] = (fingerprint, runtime)
        return runtime

    def get(self, name: str) -> Runtime | None:
        known = self._clients.get(name)
        return known[1] if known else None

    def names(self) -> list[str]:
        return list(self._clients)

    async def drop(self, name: str) -> None:
        known = self._clients.pop(name, None)
        if known:
            await known[1].close()

    async def close(self) -> None:
        for name in list(self._clients):
            await self.drop(name)
