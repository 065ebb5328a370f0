"""Controller: a workqueue fed by informer handlers, drained by N reconcile workers.

Workqueue semantics are client-go's (engine.workqueue); the loop is controller-runtime's:
success forgets the key's backoff, an exception re-adds it rate-limited, `requeue_after`
re-adds it after a delay, a `TerminalError` is counted and dropped. Records that fail
validation are not handed to the reconciler's actions: they get condition Invalid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from zun_controller.engine.clock import Clock, RealClock
from zun_controller.engine.informer import Cached, Informer
from zun_controller.engine.logcontext import bind, unbind
from zun_controller.engine.reconciler import Reconciler, Result, TerminalError
from zun_controller.engine.workqueue import ShutDown, WorkQueue
from zun_controller.errors import FencedError, InvalidError
from zun_controller.metrics import Metrics
from zun_controller.store.codec import load
from zun_controller.store.keys import ROOT
from zun_controller.store.records import RecordStore

log = logging.getLogger(__name__)
#: how long a stopping controller waits for cancelled workers before it leaves them behind
STOP_GRACE_S = 5.0
#: when a key refused for want of the lease is tried again
FENCED_RETRY_S = 1.0

#: decides from (old, new) whether a change is worth a reconcile
Predicate = Callable[[Cached | None, Cached | None], bool]
#: maps a changed record's key onto the keys to reconcile (e.g. its owner's)
Mapper = Callable[[str, Cached | None, Cached | None], Iterable[str]]
#: told of every reconcile: (controller, key, wall-clock start, wall-clock end)
Observer = Callable[[str, str, float, float], None]


def _without_status(cached: Cached) -> object:
    try:
        data = load(cached.value)
    except InvalidError:
        return cached.value
    data.pop("status", None)
    meta = data.get("metadata")
    if isinstance(meta, dict) and not meta.get("deletionTimestamp"):
        meta.pop("finalizers", None)
    return data


def ignore_status_only_changes(old: Cached | None, new: Cached | None) -> bool:
    """Like controller-runtime's GenerationChanged predicate, but for any change of spec or
    metadata other than status and finalizers (while not deleting).

    Our own status writes and the finalizer a reconciler adds then do not wake it again;
    resyncs (old is new) and everything users change do.
    """
    if old is None or new is None or old is new:
        return True
    return _without_status(old) != _without_status(new)


class Controller:
    def __init__(
        self,
        name: str,
        reconciler: Reconciler,
        informer: Informer[Any],
        *,
        store: RecordStore,
        metrics: Metrics,
        workers: int = 4,
        clock: Clock | None = None,
        predicate: Predicate = ignore_status_only_changes,
    ) -> None:
        self.name = name
        self.reconciler = reconciler
        self.informer = informer
        self.workers = workers
        self._store = store
        self._metrics = metrics
        self.queue: WorkQueue[str] = WorkQueue(
            name, clock=clock or RealClock(), metrics=metrics.queue(name)
        )
        metrics.init_controller(name, workers)
        self.observer: Observer | None = None
        self.drain_on_stop = True
        self._stopping = False
        informer.add_handler(self._handler(predicate, None))

    def watches(
        self,
        informer: Informer[Any],
        mapper: Mapper,
        predicate: Predicate = ignore_status_only_changes,
    ) -> None:
        """Reconcile the keys `mapper` names whenever a record of another kind changes."""
        informer.add_handler(self._handler(predicate, mapper))

    def _handler(
        self, predicate: Predicate, mapper: Mapper | None
    ) -> Callable[[str, Cached | None, Cached | None], None]:
        def handle(key: str, old: Cached | None, new: Cached | None) -> None:
            if not predicate(old, new):
                return
            for target in mapper(key, old, new) if mapper else (key,):
                self.queue.add(target)

        return handle

    async def run(self) -> None:
        """Run the workers until cancelled; on a graceful stop (`drain_on_stop`, the default)
        let the ones busy finish their key first. A replica that lost its lease must not: it
        stops at once, since another may already act."""
        self._stopping = False
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        try:
            # not gather(): a cancelled gather waits for its children, and a worker that misses
            # its cancel would keep this waiting while it reconciles the rest of the queue
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            self._stopping = True  # no worker takes another key from here on
            self.queue.shutdown()
            if self.drain_on_stop:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await self.queue.shutdown_with_drain()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=STOP_GRACE_S)

    async def _worker(self) -> None:
        active = self._metrics.active_workers.labels(self.name)
        fence = self._store.fence
        while not self._stopping:
            if fence is not None:
                await fence.held()  # unsure of the lease (renewals lag): take no key meanwhile
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            if self._stopping:  # handed out as the stop began: left for the next leader
                self.queue.done(key)
                return
            if fence is not None and not fence.holds():  # unsure again: start nothing
                self.queue.done(key)
                self.queue.add(key)
                continue
            active.inc()
            try:
                await self._process(key)
            finally:
                active.dec()
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        reconcile_id = uuid.uuid4().hex[:12]
        started, wall_start = time.perf_counter(), time.time()
        outcome = "success"
        context = bind(self.informer.kind, key, reconcile_id)
        try:
            result = await self.reconciler.reconcile(key)
        except FencedError as exc:
            # not a failure of the key: it waits for the lease to be sure again, or for the
            # next leader (the process stops when the lease is lost)
            log.debug("not acting without the lease", extra=_ctx(self.name, key, reconcile_id, exc))
            self.queue.add_after(key, FENCED_RETRY_S)
            outcome = "requeue_after"
        except InvalidError as exc:
            await self._report_invalid(key, exc)
            self.queue.forget(key)
            outcome = "error"
        except TerminalError as exc:
            self._metrics.terminal_errors.labels(self.name).inc()
            self._metrics.reconcile_errors.labels(self.name).inc()
            log.warning("terminal reconcile error", extra=_ctx(self.name, key, reconcile_id, exc))
            self.queue.forget(key)
            outcome = "error"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._metrics.reconcile_errors.labels(self.name).inc()
            log.info("reconcile failed; retrying", extra=_ctx(self.name, key, reconcile_id, exc))
            self.queue.add_rate_limited(key)
            outcome = "error"
        else:
            outcome = self._schedule(key, result)
        finally:
            unbind(context)
            self._metrics.reconcile_time.labels(self.name).observe(time.perf_counter() - started)
            if self.observer is not None:
                self.observer(self.name, key, wall_start, time.time())
        self._metrics.reconcile_total.labels(self.name, outcome).inc()

    def _schedule(self, key: str, result: Result) -> str:
        if result.requeue_after is not None:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
            return "requeue_after"
        if result.requeue:
            self.queue.add_rate_limited(key)
            return "requeue"
        self.queue.forget(key)
        return "success"

    async def _report_invalid(self, key: str, exc: InvalidError) -> None:
        cached = self.informer.raw(key)
        kind = self.informer.kind
        if cached is None:
            return
        if any(e.path == "" for e in exc.errors):
            self._metrics.undecodable_values.labels(kind).inc()
            log.warning(
                "store value is not a record", extra={"kind": kind, "key": key, "error": str(exc)}
            )
            return
        self._metrics.invalid_records.labels(kind).inc()
        log.warning("invalid record", extra={"kind": kind, "key": key, "error": str(exc)})
        await self._store.mark_invalid(ROOT + key, cached.mod_revision, str(exc))


def _ctx(controller: str, key: str, reconcile_id: str, exc: BaseException) -> dict[str, str]:
    return {"controller": controller, "key": key, "reconcile_id": reconcile_id, "error": repr(exc)}
