"""A manager process with a test reconciler, for the crash and leader-election e2e tests.

Its reconciler stamps each Container's status (observedGeneration, condition Stamped naming
this process) and appends `time identity key start|done` lines to an action log, so tests can
check from outside that every record was handled and that no two processes acted at once.
Run: python tests/e2e/stamp_manager.py --etcd URL --identity NAME --log FILE
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time

from zun_controller.cli import logs
from zun_controller.engine.controller import Controller
from zun_controller.engine.informer import Informer
from zun_controller.engine.leader import LeaderElector
from zun_controller.engine.manager import Manager
from zun_controller.engine.reconciler import Result
from zun_controller.metrics import Metrics
from zun_controller.models.base import Condition, ConditionStatus
from zun_controller.models.container import Container
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore


class Stamp:
    def __init__(
        self,
        informer: Informer[Container],
        store: RecordStore,
        identity: str,
        log: str,
        delay: float,
    ) -> None:
        self.informer, self.store, self.identity, self.delay = informer, store, identity, delay
        self.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(self, key: str, what: str) -> None:
        os.write(self.fd, f"{time.time():.6f} {self.identity} {key} {what}\n".encode())

    async def reconcile(self, key: str) -> Result:
        obj = self.informer.get(key)
        if obj is None or obj.status.observed_generation == obj.metadata.generation:
            return Result()
        self.record(key, "start")
        await asyncio.sleep(self.delay)
        obj.status.observed_generation = obj.metadata.generation
        obj.status.conditions = [
            Condition(type="Stamped", status=ConditionStatus.TRUE, message=self.identity)
        ]
        await self.store.update_status(obj)
        self.record(key, "done")
        return Result()


async def main(args: argparse.Namespace) -> None:
    kv = EtcdKV.from_url(args.etcd)
    store = RecordStore(kv)
    metrics = Metrics()
    informer = Informer(store, Container, metrics=metrics)
    stamp = Stamp(informer, store, args.identity, args.log, args.delay)
    elector = LeaderElector(kv, metrics=metrics, identity=args.identity, ttl=args.lease_ttl)
    manager = Manager(metrics=metrics, elector=elector, health_port=None)
    manager.add_controller(
        Controller("stamp", stamp, informer, store=store, metrics=metrics, workers=args.workers)
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await manager.run(stop)
    await kv.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--etcd", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--lease-ttl", type=int, default=3)
    logs.setup("WARNING")
    asyncio.run(main(parser.parse_args()))
