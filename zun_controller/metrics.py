"""Prometheus metrics: controller-runtime's names where they mean the same, `zun_*` for our own.

The only module that imports prometheus_client. Each process builds one `Metrics` with its own
registry (no global state), and every label combination a controller will use starts at 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RESULTS = ("success", "error", "requeue", "requeue_after")
_DURATION_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
_CONVERGENCE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
DRIVER_RESULTS = ("success", "error")
#: (kind, phase, project) -> number of records, computed at scrape time
RecordCounts = Callable[[], Iterable[tuple[str, str, str, int]]]


class Metrics:
    """Every metric of one process, in a registry of its own.

    `/metrics` needs no token, so by default no series names a tenant's record: the
    per-container gauges carry `project=""` and the record's uid as `name`, and `zun_records`
    is summed over projects (`project=""`). `tenant_names=True` (the admin's
    `--metrics-tenant-names`) labels them with project and record names instead.
    """

    def __init__(self, *, tenant_names: bool = False) -> None:
        self.tenant_names = tenant_names
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self.terminal_errors = Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ["controller"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ["controller"],
            registry=r,
        )
        self.max_concurrent = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ["controller"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "workqueue_depth", "Current depth of workqueue", ["name"], registry=r
        )
        self.queue_adds = Counter(
            "workqueue_adds_total",
            "Total number of adds handled by workqueue",
            ["name"],
            registry=r,
        )
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            ["name"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            ["name"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.queue_retries = Counter(
            "workqueue_retries_total",
            "Total number of retries handled by workqueue",
            ["name"],
            registry=r,
        )
        self.leader = Gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
            "1 indicates master",
            ["name"],
            registry=r,
        )
        self.invalid_records = Counter(
            "zun_invalid_records_total",
            "Records read from the store that failed validation (marked Invalid, not acted on)",
            ["kind"],
            registry=r,
        )
        self.undecodable_values = Counter(
            "zun_undecodable_values_total",
            "Store values that are not a JSON record at all",
            ["kind"],
            registry=r,
        )
        self.relists = Counter(
            "zun_informer_relists_total",
            "Informer lists after the first, by reason (compacted watch revision)",
            ["kind", "reason"],
            registry=r,
        )
        self.cache_records = Gauge(
            "zun_informer_cache_records", "Records in an informer's cache", ["kind"], registry=r
        )
        self._init_zun(r)

    def _init_zun(self, r: CollectorRegistry) -> None:
        self.convergence = Histogram(
            "zun_convergence_seconds",
            "From a spec change seen by the informer to status Ready for that generation",
            ["kind"],
            buckets=_CONVERGENCE_BUCKETS,
            registry=r,
        )
        self.driver_calls = Counter(
            "zun_driver_calls_total",
            "Calls to a runtime driver by engine (Host), operation and result",
            ["engine", "operation", "result"],
            registry=r,
        )
        self.driver_seconds = Histogram(
            "zun_driver_call_seconds",
            "Duration of runtime driver calls by engine (Host) and operation",
            ["engine", "operation"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.drift_corrections = Counter(
            "zun_drift_corrections_total",
            "Corrections made because the engine differed from an unchanged record",
            ["kind", "action"],
            registry=r,
        )
        self.container_cpu = Gauge(
            "zun_container_cpu_ratio",
            "CPU used by a Container record's container, in cores (1.0 = one core)",
            ["project", "name"],
            registry=r,
        )
        self.container_memory = Gauge(
            "zun_container_memory_bytes",
            "Memory used by a Container record's container",
            ["project", "name"],
            registry=r,
        )
        self.events_dropped = Counter(
            "zun_events_dropped_total", "Events not written (store errors, full buffer)", registry=r
        )
        self._record_sources: list[RecordCounts] = []
        r.register(_RecordsCollector(self._record_sources, self.tenant_names))

    def record_labels(self, project: str, name: str, uid: str) -> tuple[str, str]:
        """The (project, name) labels of a record's series: its names only if allowed."""
        return (project, name) if self.tenant_names else ("", uid)

    def add_record_counts(self, source: RecordCounts) -> None:
        """Let `zun_records` include what `source` counts at each scrape."""
        self._record_sources.append(source)

    def init_driver(self, engine: str, operations: Iterable[str]) -> None:
        for op in operations:
            for result in DRIVER_RESULTS:
                self.driver_calls.labels(engine, op, result)
            self.driver_seconds.labels(engine, op)

    def init_drift(self, kind: str, actions: Iterable[str]) -> None:
        for action in actions:
            self.drift_corrections.labels(kind, action)

    def init_controller(self, name: str, workers: int) -> None:
        for result in RESULTS:
            self.reconcile_total.labels(name, result)
        self.reconcile_errors.labels(name)
        self.terminal_errors.labels(name)
        self.reconcile_time.labels(name)
        self.active_workers.labels(name).set(0)
        self.max_concurrent.labels(name).set(workers)
        self.queue_depth.labels(name).set(0)
        self.queue_adds.labels(name)
        self.queue_duration.labels(name)
        self.work_duration.labels(name)
        self.queue_retries.labels(name)

    def init_kind(self, kind: str) -> None:
        self.invalid_records.labels(kind)
        self.undecodable_values.labels(kind)
        self.relists.labels(kind, "compacted")
        self.cache_records.labels(kind).set(0)
        self.convergence.labels(kind)

    def queue(self, name: str) -> QueueMetricsAdapter:
        return QueueMetricsAdapter(self, name)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class QueueMetricsAdapter:
    """One workqueue's hooks (engine.workqueue.QueueMetrics) onto the workqueue_* metrics."""

    def __init__(self, metrics: Metrics, name: str) -> None:
        self._depth = metrics.queue_depth.labels(name)
        self._adds = metrics.queue_adds.labels(name)
        self._queued = metrics.queue_duration.labels(name)
        self._work = metrics.work_duration.labels(name)
        self._retries = metrics.queue_retries.labels(name)

    def add(self) -> None:
        self._adds.inc()

    def get(self, queued_seconds: float) -> None:
        self._queued.observe(queued_seconds)

    def done(self, work_seconds: float) -> None:
        self._work.observe(work_seconds)

    def depth(self, n: int) -> None:
        self._depth.set(n)

    def retry(self) -> None:
        self._retries.inc()


class _RecordsCollector(Collector):
    """`zun_records{kind,phase,project}`, counted from informer caches when scraped."""

    def __init__(self, sources: list[RecordCounts], tenant_names: bool) -> None:
        self._sources, self._tenant_names = sources, tenant_names

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "zun_records", "Records by kind, phase and project", labels=["kind", "phase", "project"]
        )
        counts: dict[tuple[str, str, str], int] = {}
        for source in self._sources:
            for kind, phase, project, n in source():
                key = (kind, phase, project if self._tenant_names else "")
                counts[key] = counts.get(key, 0) + n
        for labels, n in counts.items():
            family.add_metric(list(labels), n)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
