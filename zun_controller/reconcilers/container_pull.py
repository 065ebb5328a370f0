"""Pulling a Container's image before its engine container is created, as the kubelet does.

- Policy (`spec.imagePullPolicy`, unset: Kubernetes' default, models/image.py): `Never` only
  checks the image is on the host (`ErrImageNeverPull` if not); `IfNotPresent` pulls when it
  is absent; `Always` pulls every time a container is to be created.
- Credentials: the first PullSecret of `spec.imagePullSecrets` (in the record's project) whose
  Docker config has an entry for the image's registry host. A named PullSecret that does not
  exist is `PullSecretNotFound`, and nothing is pulled.
- One pull per (host, image, credentials) at a time: concurrent creates wait for the pull in
  flight (single flight), each pull bounded by `timeout` seconds. A pull runs as a task of
  its own, so reconcile workers are not held by it (`ImagePuller`).
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from zun_controller.drivers.runtime.base import ContainerState, ImageInfo, RegistryAuth, Runtime
from zun_controller.engine.client import Records
from zun_controller.engine.events import EventRecorder
from zun_controller.errors import PermanentError, TransientError
from zun_controller.models.container import Container, ContainerPhase
from zun_controller.models.event import EventType
from zun_controller.models.image import (
    ImagePullPolicy,
    PullSecretRef,
    effective_policy,
    parse_reference,
)
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


@dataclass
class _Flight:
    """A pull in progress, and the records waiting for it (uid -> workqueue key)."""

    task: asyncio.Task[ImageInfo]
    started: float
    waiters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Outcome:
    """How the pull a record waited for ended, kept until the record's next pass."""

    key: FlightKey
    info: ImageInfo | None
    error: BaseException | None
    seconds: float


def _fingerprint(auth: RegistryAuth | None) -> str:
    if auth is None:
        return ""
    raw = "\0".join((auth.registry, auth.username, auth.password)).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def digest_of(info: ImageInfo, image: str) -> str:
    """`repository@sha256:...` of the reference's repository, else the engine's image id."""
    repository = parse_reference(image).repository
    return next((d for d in info.repo_digests if d.split("@", 1)[0] == repository), info.id)


def pull_credentials(
    secrets: Records[PullSecret] | None,
    project: str | None,
    image: str,
    refs: list[PullSecretRef],
    field: str = "spec.imagePullSecrets",
) -> RegistryAuth | None:
    """The credentials for `image`: the first named PullSecret of the project with an entry
    for its registry host; `Waiting("PullSecretNotFound")` naming the field when one is
    missing."""
    registry = parse_reference(image).registry
    for i, ref in enumerate(refs):
        secret = secrets.get_by_name(ref.name, project) if secrets else None
        if secret is None:
            raise Waiting(
                "PullSecretNotFound",
                f"{field}[{i}]: PullSecret {ref.name!r} does not exist in project {project}",
            )
        found = secret.spec.credentials().get(registry)
        if found is not None:
            return RegistryAuth(registry, found[0], found[1])
    return None


class ImagePuller:
    """Pulls run as tasks of their own, not on a reconcile worker: a record whose image is
    being pulled gets `Waiting("Pulling")` and is queued again (`wake`) when the pull ends;
    its next pass reads the outcome. Set `wake` (the Container workqueue's `add`) before
    the first pass; without it records are looked at again after the pull's time bound."""

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
        self.wake: Callable[[str], None] | None = None
        self._clock = clock
        self._flights: dict[FlightKey, _Flight] = {}
        self._failures: dict[FlightKey, _Failure] = {}
        self._outcomes: dict[str, _Outcome] = {}

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
        uid = obj.metadata.uid or obj.key
        outcome = self._outcomes.pop(uid, None)
        if outcome is not None and outcome.key[:2] == (runtime.name, image):
            self._landed(obj, outcome)
            return
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
        self._join(runtime, key, auth, obj)
        raise Waiting("Pulling", f'pulling image "{image}"', after=self.timeout + 5.0)

    def _landed(self, obj: Container, outcome: _Outcome) -> None:
        """Report the pull the record waited for; `Waiting` if it failed."""
        image = obj.spec.image
        if outcome.info is not None:
            took, size = outcome.seconds, _mb(outcome.info.size)
            message = f'Successfully pulled image "{image}" in {took:.2f}s ({size})'
            self._record(obj, EventType.NORMAL, "Pulled", message)
            return
        error = outcome.error
        if not isinstance(error, PermanentError) or error.reason != PULL_FAILED:
            raise error or TransientError(f"pulling {image}: no outcome")
        self._record(obj, EventType.WARNING, "Failed", f"Failed to pull image: {error.message}")
        failure = self._failures.get(outcome.key)
        delay = failure.retry_at - self._clock() if failure else 0.0
        raise Waiting(PULL_FAILED, error.message, after=max(min(SHOW_BACKOFF_AFTER_S, delay), 0.1))

    def _auth(self, obj: Container) -> RegistryAuth | None:
        spec = obj.spec
        return pull_credentials(self.secrets, obj.project, spec.image, spec.image_pull_secrets)

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

    def _join(
        self, runtime: Runtime, key: FlightKey, auth: RegistryAuth | None, obj: Container
    ) -> None:
        """Wait for the pull in flight for `key`, or start one (single flight)."""
        flight = self._flights.get(key)
        if flight is None:
            task = asyncio.create_task(runtime.pull_image(key[1], auth, within=self.timeout))
            flight = self._flights[key] = _Flight(task, self._clock())
            task.add_done_callback(lambda done: self._finish(key, flight))
        uid = obj.metadata.uid or obj.key
        if uid not in flight.waiters:
            self._record(obj, EventType.NORMAL, "Pulling", f'Pulling image "{obj.spec.image}"')
        flight.waiters[uid] = obj.key

    def _finish(self, key: FlightKey, flight: _Flight) -> None:
        """A pull ended: keep its outcome for each waiter, count a failure once, wake them."""
        if self._flights.get(key) is flight:
            del self._flights[key]
        task = flight.task
        error = None if task.cancelled() else task.exception()
        if task.cancelled():
            error = TransientError(f"pulling {key[1]}: cancelled")
        info = task.result() if error is None else None
        if isinstance(error, PermanentError) and error.reason == PULL_FAILED:
            self._fail(key, error.message)
        elif error is None:
            self._failures.pop(key, None)
        seconds = self._clock() - flight.started
        for uid, record_key in flight.waiters.items():
            self._outcomes[uid] = _Outcome(key, info, error, seconds)
            if self.wake is not None:
                self.wake(record_key)

    def _fail(self, key: FlightKey, words: str) -> None:
        previous = self._failures.get(key)
        count = previous.count + 1 if previous else 1
        delay = min(self.backoff * float(2 ** (count - 1)), self.backoff_max)
        wall = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=delay)
        self._failures[key] = _Failure(count, self._clock() + delay, wall, words)

    def forget(self, obj: Container) -> None:
        """Drop what is kept for a record that goes (an outcome its next pass would read)."""
        self._outcomes.pop(obj.metadata.uid or obj.key, None)

    async def close(self) -> None:
        """Cancel the pulls in flight (the manager stops); the engine may finish them."""
        tasks = [flight.task for flight in self._flights.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def image_id(self, runtime: Runtime, obj: Container, state: ContainerState) -> str:
        """What `status.imageID` says for the container `state` describes."""
        info = await runtime.inspect_image(state.image_id or obj.spec.image)
        if info is None:
            return state.image_id
        return digest_of(info, obj.spec.image)

    def _record(self, obj: Container, type_: EventType, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.record(obj, type_, reason, message)
