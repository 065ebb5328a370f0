"""Releases quota usage: recounts a project when one of its counted records goes (a watch),
and every project with a Quota at start and after a compaction (the repair path)."""

from __future__ import annotations

import logging

from zun_controller.admission.quota import COUNTED, QuotaAdmission
from zun_controller.errors import CompactedError
from zun_controller.models.project import Quota
from zun_controller.store.keys import ROOT, queue_key, split_queue_key
from zun_controller.store.kv import EventType

log = logging.getLogger(__name__)
_PLURALS = {cls.KIND.plural for cls in COUNTED}


class QuotaReleaser:
    def __init__(self, quota: QuotaAdmission) -> None:
        self.quota = quota

    async def run(self) -> None:
        """Until cancelled: repair, then recount on every delete; repair again on compaction."""
        while True:
            revision = await self.quota.store.kv.revision()
            await self.quota.repair_all()
            try:
                await self._follow(revision + 1)
            except CompactedError:
                log.info("quota watch compacted; recounting every project")

    async def _follow(self, start: int) -> None:
        async for batch in self.quota.store.watch(ROOT, start):
            projects = set()
            for event in batch:
                plural, project, name = split_queue_key(queue_key(event.key))
                if event.type is EventType.DELETE and plural in _PLURALS and project:
                    projects.add(project)
                elif plural == Quota.KIND.plural and event.type is EventType.PUT:
                    projects.add(name)
            for project in sorted(projects):
                await self.quota.recompute(project)
