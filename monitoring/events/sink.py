"""The sink without HTTP: validate and buffer events, flush every `flush_rows` rows or `flush_seconds`
seconds (a background thread), and once more on `close()` (the server calls it on SIGTERM)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitoring.events.arms import ArmMapping
from monitoring.events.buffer import EventBuffer
from monitoring.events.cloudevent import parse_inference_event
from monitoring.events.errors import EventRejected
from monitoring.events.feedback import parse_feedback
from monitoring.events.metrics import SinkMetrics
from monitoring.events.schema import DEFAULT_PREFIX, FEEDBACK
from monitoring.events.timestamps import now
from monitoring.events.writer import write_parts
from onevision.storage import ArtifactStore, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkConfig:
    store: str
    prefix: str = DEFAULT_PREFIX
    flush_rows: int = 1000
    flush_seconds: float = 5.0
    max_body_bytes: int = 16 * 2**20
    max_buffered_rows: int = 200_000
    dedupe_capacity: int = 1_000_000
    arms: ArmMapping = field(default_factory=ArmMapping)

    def __post_init__(self) -> None:
        for name in ("flush_rows", "max_body_bytes", "max_buffered_rows", "dedupe_capacity"):
            if getattr(self, name) < 1:
                raise ValueError(f"SinkConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.flush_seconds <= 0:
            raise ValueError(f"SinkConfig.flush_seconds must be > 0, got {self.flush_seconds}")


class EventSink:
    def __init__(self, config: SinkConfig, store: ArtifactStore | None = None):
        self.config = config
        self.store = store or open_store(config.store)
        self.metrics = SinkMetrics()
        self.buffer = EventBuffer(config.dedupe_capacity)
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ ingest
    def ingest_inference(self, headers: Mapping[str, str], body: bytes, params: Mapping[str, str]) -> tuple[int, int]:
        self._admit(body)
        table, row = parse_inference_event(headers, body, params, self.config.arms, now())
        return self._buffer(table, [row])

    def ingest_feedback(self, body: bytes) -> tuple[int, int]:
        self._admit(body)
        return self._buffer(FEEDBACK, parse_feedback(body, now()))

    def reject(self, error: EventRejected) -> None:
        self.metrics.rejected.labels(error.reason).inc()

    def _admit(self, body: bytes) -> None:
        if len(body) > self.config.max_body_bytes:
            raise EventRejected("body_too_large", f"body has {len(body)} bytes; at most {self.config.max_body_bytes}", 413)
        if len(self.buffer) >= self.config.max_buffered_rows:
            raise EventRejected("backpressure", f"{len(self.buffer)} rows wait for a flush (the store may be down); "
                                "retry later", 503)

    def _buffer(self, table: str, rows: list[dict]) -> tuple[int, int]:
        accepted, duplicates = self.buffer.add(table, rows)
        self.metrics.received.labels(table).inc(accepted)
        if duplicates:
            self.metrics.duplicates.labels(table).inc(duplicates)
        pending = len(self.buffer)
        self.metrics.buffered.set(pending)
        if pending >= self.config.flush_rows:
            self._wake.set()
        return accepted, duplicates

    # ------------------------------------------------------------------ flush
    def flush(self) -> int:
        """Write every buffered row; rows of a failed write stay buffered. Returns the rows written."""
        written = 0
        with self._flush_lock:
            for table, rows in self.buffer.take().items():
                stored: set[int] = set()
                try:
                    for _key, group in write_parts(self.store, self.config.prefix, table, rows):
                        stored.update(map(id, group))
                        self.metrics.flushed.labels(table).inc(len(group))
                        self.metrics.files.labels(table).inc()
                except Exception:  # the store is down or refused: keep what is not written, try again later
                    log.exception("flush of %s failed; %d rows kept for the next flush", table, len(rows) - len(stored))
                    self.metrics.flush_errors.inc()
                    self.buffer.put_back(table, [row for row in rows if id(row) not in stored])
                done = len(stored)
                written += done
            self.metrics.buffered.set(len(self.buffer))
        return written

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="event-sink-flusher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.flush()
