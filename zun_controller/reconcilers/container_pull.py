"""Pulling a Container's image before its engine container is created, as the kubelet does.

- Policy (`spec.imagePullPolicy`, unset: Kubernetes' default, models/image.py): `Never` only
  checks the image is on the host (`ErrImageNeverPull` if not); `IfNotPresent` pulls when it
  is absent; `Always` pulls every time a container is to be created.
- Credentials: the first PullSecret of `spec.imagePullSecrets` (in the record's project) whose
  Docker config has an entry for the image's registry host. A named PullSecret that does not
  exist is `PullSecretNotFound`, and nothing is pulled.
- One pull per (host, image, credentials) at a time: concurrent creates wait for the pull in
  flight (single flight), each pull bounded by `timeout` seconds.
- A failed pull is `ErrImagePull` with the registry's words, then `ImagePullBackOff` naming the
  next retry time until the back-off (`backoff` seconds, doubled per failure up to
  `backoff_max`) has passed; nothing is created meanwhile, so nothing crash-loops. Back-off is
  kept per (host, image, credentials): new credentials are a new attempt, tried at once.
- Events `Pulling`, `Pulled` (size, seconds), `Failed`, `BackOff`, `ErrImageNeverPull`. No
  message, log line or key here holds a credential (keys hold a digest of them).
- `status.imageID` is the image the engine container runs, by the repository digest of the
  reference's repository (else the engine's image id).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from zun_controller.drivers.runtime.base import ContainerState, ImageInfo, RegistryAuth, Runtime
from zun_controller.engine.client import Records
from zun_controller.engine.events import EventRecorder
from zun_controller.errors import PermanentError
from zun_controller.models.container import Container, ContainerPhase
from zun_controller.models.event import EventType
from zun_controller.models.image import ImagePullPolicy, effective_policy, parse_reference
from zun_controller.models.pullsecret import PullSecret
from zun_controller.reconcilers.waiting import Waiting

PULL_FAILED = "ErrImagePull"
#: Reasons that mean the image cannot be had (now): the record shows phase Error.
FAILED = frozenset({PULL_FAILED, "ImagePullBackOff", "ErrImageNeverPull"})
#: How soon after `ErrImagePull` the record is looked at again, to show `ImagePullBackOff`.
SHOW_BACKOFF_AFTER_S = 1.0
#: How often a `Never` record whose image is absent is looked at again.
NEVER_RECHECK_S = 30.0

FlightKey = tuple[str, str, str]  # host, image, digest of the credentials


class PullSettings(TypedDict, total=False):
    """`ImagePuller`'s keyword settings, as the composition root passes them."""

    timeout: float
    backoff: float
    backoff_max: float


@dataclass
class _Failure:
    count: int
    retry_at: float  # on the puller's clock
    retry_wall: datetime
    words: str
    flight: asyncio.Task[ImageInfo]  # the pull that failed: its waiters count it once


def _fingerprint(auth: RegistryAuth | None) -> str:
    if auth is None:
        return ""
    raw = "\0".join((auth.registry, auth.username, auth.password)).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _retrieve(task: asyncio.Task[ImageInfo]) -> None:
    """Marks a finished pull's exception retrieved: its waiters may all have gone."""
    if not task.cancelled():
        task.exception()


def digest_of(info: ImageInfo, image: str) -> str:
    """`repository@sha256:...` of the reference's repository, else the engine's image id."""
    repository = parse_reference(image).repository
    return next((d for d in info.repo_digests if d.split("@", 1)[0] == repository), info.id)


class ImagePuller:
    def __init__(
        self,
        secrets: Records[PullSecret] | None = None,
        recorder: EventRecorder | None = None,
        *,
        timeout: float = 300.0,
        backoff: float = 10.0,
        backoff_max: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secrets, self.recorder = secrets, recorder
        self.timeout, self.backoff, self.backoff_max = timeout, backoff, backoff_max
        self._clock = clock
        self._flights: dict[FlightKey, asyncio.Task[ImageInfo]] = {}
        self._failures: dict[FlightKey, _Failure] = {}

    async def ensure(self, runtime: Runtime, obj: Container, *, replacing: bool) -> None:
        """The image is on the host as the policy wants it, or `Waiting` says why not. When
        it cannot be and no container of the record exists (`replacing` False), the record's
        phase becomes Error; a container being replaced keeps running and its phase."""
        try:
            await self._ensure(runtime, obj)
        except Waiting as wait:
            if wait.reason in FAILED and not replacing:
                obj.status.phase = ContainerPhase.ERROR
            raise

    async def _ensure(self, runtime: Runtime, obj: Container) -> None:
        image = obj.spec.image
        policy = effective_policy(image, obj.spec.image_pull_policy)
        if policy is not ImagePullPolicy.ALWAYS and await runtime.image_exists(image):
            return
        if policy is ImagePullPolicy.NEVER:
            message = (
                f'image "{image}" is not present on host {runtime.name} '
                "and imagePullPolicy is Never"
            )
            self._record(obj, EventType.WARNING, "ErrImageNeverPull", message)
            raise Waiting("ErrImageNeverPull", message, after=NEVER_RECHECK_S)
        auth = self._auth(obj)
        key = (runtime.name, image, _fingerprint(auth))
        self._check_backoff(obj, key)
        await self._pull(runtime, obj, key, auth)

    def _auth(self, obj: Container) -> RegistryAuth | None:
        registry = parse_reference(obj.spec.image).registry
        for i, ref in enumerate(obj.spec.image_pull_secrets):
            secret = self.secrets.get_by_name(ref.name, obj.project) if self.secrets else None
            if secret is None:
                raise Waiting(
                    "PullSecretNotFound",
                    f"spec.imagePullSecrets[{i}]: PullSecret {ref.name!r} does not exist "
                    f"in project {obj.project}",
                )
            found = secret.spec.credentials().get(registry)
            if found is not None:
                return RegistryAuth(registry, found[0], found[1])
        return None

    def _check_backoff(self, obj: Container, key: FlightKey) -> None:
        failure = self._failures.get(key)
        if failure is None or self._clock() >= failure.retry_at:
            return
        image = obj.spec.image
        self._record(obj, EventType.NORMAL, "BackOff", f'Back-off pulling image "{image}"')
        raise Waiting(
            "ImagePullBackOff",
            f'Back-off pulling image "{image}": {failure.words}; '
            f"next retry at {failure.retry_wall.isoformat()}",
            after=max(failure.retry_at - self._clock(), 0.1),
        )

    async def _pull(
        self, runtime: Runtime, obj: Container, key: FlightKey, auth: RegistryAuth | None
    ) -> None:
        image = obj.spec.image
        self._record(obj, EventType.NORMAL, "Pulling", f'Pulling image "{image}"')
        started = self._clock()
        flight = self._shared(runtime, key, auth)
        try:
            info = await asyncio.shield(flight)
        except PermanentError as exc:
            if exc.reason != PULL_FAILED:
                raise
            delay = self._fail(key, exc.message, flight)
            self._record(obj, EventType.WARNING, "Failed", f"Failed to pull image: {exc.message}")
            raise Waiting(
                PULL_FAILED, exc.message, after=min(SHOW_BACKOFF_AFTER_S, delay)
            ) from None
        self._failures.pop(key, None)
        took = self._clock() - started
        self._record(
            obj,
            EventType.NORMAL,
            "Pulled",
            f'Successfully pulled image "{image}" in {took:.2f}s ({_mb(info.size)})',
        )

    def _shared(
        self, runtime: Runtime, key: FlightKey, auth: RegistryAuth | None
    ) -> asyncio.Task[ImageInfo]:
        """The pull in flight for `key`, or a new one (awaited shielded: a waiter cancelled
        leaves it running for the others)."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.create_task(runtime.pull_image(key[1], auth, within=self.timeout))
            self._flights[key] = task
            task.add_done_callback(_retrieve)
            task.add_done_callback(lambda done: self._land(key, done))
        return task

    def _land(self, key: FlightKey, task: asyncio.Task[ImageInfo]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]

    def _fail(self, key: FlightKey, words: str, flight: asyncio.Task[ImageInfo]) -> float:
        """Record a failed pull (once, whatever the number of its waiters); the back-off
        before the next try, in seconds."""
        previous = self._failures.get(key)
        if previous is not None and previous.flight is flight:
            return max(previous.retry_at - self._clock(), 0.0)
        count = previous.count + 1 if previous else 1
        delay = min(self.backoff * float(2 ** (count - 1)), self.backoff_max)
        wall = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=delay)
        self._failures[key] = _Failure(count, self._clock() + delay, wall, words, flight)
        return delay

    async def image_id(self, runtime: Runtime, obj: Container, state: ContainerState) -> str:
        """What `status.imageID` says for the container `state` describes."""
        info = await runtime.inspect_image(state.image_id or obj.spec.image)
        if info is None:
            return state.image_id
        return digest_of(info, obj.spec.image)

    def _record(self, obj: Container, type_: EventType, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.record(obj, type_, reason, message)
