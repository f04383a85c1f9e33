"""The in-memory batch: rows waiting for a flush, de-duplicated by (table, event_id).

De-duplication lives in this process only: the ids seen are remembered (up to `dedupe_capacity`, oldest
forgotten first) while the process runs, so a redelivery after a restart is stored again; readers drop those
by `event_id` (every table keeps it as a column).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

Row = dict[str, Any]


class EventBuffer:
    def __init__(self, dedupe_capacity: int = 1_000_000):
        if dedupe_capacity < 1:
            raise ValueError(f"dedupe_capacity must be >= 1, got {dedupe_capacity}")
        self._lock = threading.Lock()
        self._rows: dict[str, list[Row]] = {}
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._capacity = dedupe_capacity

    def add(self, table: str, rows: list[Row]) -> tuple[int, int]:
        """Buffer the rows not seen before; (accepted, duplicates)."""
        accepted = 0
        with self._lock:
            pending = self._rows.setdefault(table, [])
            for row in rows:
                key = (table, row["event_id"])
                if key in self._seen:
                    continue
                self._seen[key] = None
                if len(self._seen) > self._capacity:
                    self._seen.popitem(last=False)
                pending.append(row)
                accepted += 1
        return accepted, len(rows) - accepted

    def __len__(self) -> int:
        with self._lock:
            return sum(map(len, self._rows.values()))

    def take(self) -> dict[str, list[Row]]:
        """Every buffered row, leaving the buffer empty (the ids stay seen)."""
        with self._lock:
            taken, self._rows = {t: r for t, r in self._rows.items() if r}, {}
        return taken

    def put_back(self, table: str, rows: list[Row]) -> None:
        """Rows whose write failed go back in front of newer ones, for the next flush."""
        with self._lock:
            self._rows[table] = rows + self._rows.get(table, [])
