"""The composition root: builds the store, engine, reconcilers and servers from settings."""

from __future__ import annotations

from zun_controller.config import ManagerSettings
from zun_controller.engine.leader import LeaderElector
from zun_controller.engine.manager import Manager
from zun_controller.metrics import Metrics
from zun_controller.store.records import RecordStore


def build_manager(store: RecordStore, settings: ManagerSettings, metrics: Metrics) -> Manager:
    """A manager with every kind's controller registered (kinds arrive with their issues)."""
    elector = (
        LeaderElector(
            store.kv,
            metrics=metrics,
            name=settings.lease_name,
            identity=settings.identity,
            ttl=settings.lease_ttl,
        )
        if settings.leader_election
        else None
    )
    return Manager(
        metrics=metrics,
        elector=elector,
        health_host=settings.health_host,
        health_port=settings.health_port,
    )
