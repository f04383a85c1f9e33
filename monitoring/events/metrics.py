"""The sink's Prometheus metrics, in a registry of their own (served at /metrics)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class SinkMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter("onevision_events_received", "Events accepted (buffered), by table.", ["table"],
                                registry=self.registry)
        self.duplicates = Counter("onevision_events_duplicates", "Events dropped as already seen (same event id), by table.",
                                  ["table"], registry=self.registry)
        self.rejected = Counter("onevision_events_rejected", "Requests rejected with a 4xx, by reason.", ["reason"],
                                registry=self.registry)
        self.flushed = Counter("onevision_events_flushed", "Rows written to Parquet, by table.", ["table"],
                               registry=self.registry)
        self.files = Counter("onevision_events_flushed_files", "Parquet part files written, by table.", ["table"],
                             registry=self.registry)
        self.flush_errors = Counter("onevision_events_flush_errors", "Flushes that failed (rows kept for the next).",
                                    registry=self.registry)
        self.buffered = Gauge("onevision_events_buffered", "Rows waiting for the next flush.", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
