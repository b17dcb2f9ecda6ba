"""Prometheus metrics of one app, kept in its own registry so that several apps can coexist."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServiceMetrics:
    """Requests by status, latency, batch sizes, queue depth and variants made."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "kdaug_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "kdaug_request_latency_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batches = Counter("kdaug_batches", "model batches run", registry=r)
        self.batch_records = Histogram(
            "kdaug_batch_records", "records per model batch", buckets=SIZE_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "kdaug_batch_requests",
            "requests merged per model batch",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "kdaug_batch_seconds", "model time per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "kdaug_queue_depth", "requests admitted and not yet answered", registry=r
        )
        self.variants = Counter(
            "kdaug_variants", "variants returned (originals included)", registry=r
        )
        self.rejected = Counter(
            "kdaug_rejected",
            "requests or connections refused before the model (queue_full, timeout, work, "
            "response_size, media_type, header_timeout, body_timeout, connections, disconnect)",
            ["reason"],
            registry=r,
        )
        self.cancelled_records = Counter(
            "kdaug_cancelled_records",
            "records never run because their request gave up (timeout, disconnect, shutdown, "
            "failed, cancelled)",
            ["reason"],
            registry=r,
        )
        self.open_connections = Gauge(
            "kdaug_open_connections", "HTTP connections open now", registry=r
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
