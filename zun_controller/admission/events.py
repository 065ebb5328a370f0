"""Events written through admission (by users, GitOps or the bridge, not by the controller's
recorder): rate-limited per project by a token bucket, and written under an etcd lease so
they expire as the recorder's do.

One bucket per project, `event_rate` tokens a second up to `event_burst`; a create with no
token left is a `ForbiddenError` (403) naming the rate. The lease is granted once and rotated
every ttl/6, so an Event lives between 5/6 of the ttl and the ttl.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from zun_controller.admission.policy import AdmissionPolicy
from zun_controller.errors import ForbiddenError
from zun_controller.store.records import RecordStore


class EventAdmission:
    def __init__(
        self,
        store: RecordStore,
        policy: AdmissionPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.policy, self.clock = store, policy, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # project -> (tokens, at)
        self._lease, self._lease_at = 0, 0.0

    def take(self, project: str) -> None:
        """Spend one of the project's tokens, or refuse."""
        now = self.clock()
        tokens, at = self._buckets.get(project, (float(self.policy.event_burst), now))
        tokens = min(float(self.policy.event_burst), tokens + (now - at) * self.policy.event_rate)
        if tokens < 1:
            raise ForbiddenError(
                f"project {project!r} writes Events faster than {self.policy.event_rate:g}/s "
                f"(burst {self.policy.event_burst}); try again later"
            )
        self._buckets[project] = (tokens - 1, now)

    async def lease(self) -> int:
        """The lease new Events are written under."""
        ttl = self.policy.event_ttl
        if not self._lease or self.clock() - self._lease_at > ttl / 6:
            self._lease = await self.store.kv.grant_lease(ttl)
            self._lease_at = self.clock()
        return self._lease
