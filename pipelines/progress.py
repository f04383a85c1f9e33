"""Per-step progress of a local KFP run, read from kfp.local's own log stream.

kfp.local prints every task's streamed output and, around each task, its log to stdout; its orchestrator
logs the rest (skipped and cached tasks) with `logging.info` on the root logger. `ProgressStream` stands
in for stdout during a run and `log_to(stream)` sends the root logger's records to it: it keeps the full
text in ``logs/pipeline.log``, each task's output in ``logs/<task>.log``, and turns kfp.local's
"Executing task" / "finished with status" / "cache hit" / "Skipping" lines into calls on a
`ProgressListener`.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"INFO - Executing task '([^']+)'")
_END = re.compile(r"(?:INFO|ERROR) - Task '([^']+)' finished with status (SUCCESS|FAILURE)")
_CACHED = re.compile(r"INFO - Task (\S+) cache hit \(key=([0-9a-f]+)\)")
_SKIP_CONDITION = re.compile(r"INFO - Skipping conditional task (\S+) \(condition evaluated to False\)")
_SKIP_UPSTREAM = re.compile(r"INFO - Skipping task ([^\s:]+): upstream task")
_CARETS = re.compile(r"^[~^\s]+$")


class ProgressListener(Protocol):
    def task_started(self, task: str) -> None: ...
    def task_finished(self, task: str, succeeded: bool, seconds: float, error: str | None) -> None: ...
    def task_skipped(self, task: str, reason: str) -> None: ...
    def task_cached(self, task: str) -> None: ...


@dataclass
class TaskTiming:
    started: float
    seconds: float | None = None
    succeeded: bool | None = None
    error: str | None = None


def exception_text(lines: list[str]) -> str | None:
    """The exception message at the end of a task's output (the lines after the last traceback's frames)."""
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("Traceback (most recent call last)")]
    if not starts:
        return None
    body = [line.strip() for line in lines[starts[-1] + 1:] if line.strip()]
    # A frame is 'File "..."', its source line and maybe a line of carets; the exception follows the last.
    i = 0
    while i < len(body) and body[i].startswith('File "'):
        i += 1
        if i < len(body) - 1 and not body[i].startswith('File "'):
            i += 1  # the frame's source line
        while i < len(body) and _CARETS.match(body[i]):
            i += 1
    return "\n".join(body[i:]) or None


class ProgressStream(io.TextIOBase):
    def __init__(self, log_dir: Path, listener: ProgressListener) -> None:
        super().__init__()
        self.log_dir, self.listener = log_dir, listener
        self.timings: dict[str, TaskTiming] = {}
        self.skipped: dict[str, str] = {}  # task -> why it did not run
        self.cached: dict[str, str] = {}  # task -> prefix of its kfp.local cache key
        self._current: str | None = None
        self._lines: list[str] = []
        self._partial = ""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log = (self.log_dir / "pipeline.log").open("a", encoding="utf-8")
        self._task_log: io.TextIOWrapper | None = None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._log.write(_ANSI.sub("", text))
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self._log.flush()
        if self._task_log is not None:
            self._task_log.flush()

    def close(self) -> None:
        if self.closed:
            return
        if self._partial:
            self._line(_ANSI.sub("", self._partial))
            self._partial = ""
        super().close()  # flushes
        self._close_task_log()
        self._log.close()

    def _close_task_log(self) -> None:
        if self._task_log is not None:
            self._task_log.close()
            self._task_log = None

    def _line(self, line: str) -> None:
        if m := _START.search(line):
            self._current, self._lines = m.group(1), []
            self._close_task_log()
            self._task_log = (self.log_dir / f"{self._current}.log").open("w", encoding="utf-8")
            self.timings[self._current] = TaskTiming(time.perf_counter())
            self.listener.task_started(self._current)
        elif m := _END.search(line):
            task, ok = m.group(1), m.group(2) == "SUCCESS"
            timing = self.timings.setdefault(task, TaskTiming(time.perf_counter()))
            timing.seconds, timing.succeeded = time.perf_counter() - timing.started, ok
            timing.error = None if ok else (exception_text(self._lines) or "\n".join(self._lines[-15:]))
            self._close_task_log()
            self._current = None
            self.listener.task_finished(task, ok, timing.seconds, timing.error)
        elif m := _CACHED.search(line):
            self.cached[m.group(1)] = m.group(2)
            self.listener.task_cached(m.group(1))
        elif m := _SKIP_CONDITION.search(line) or _SKIP_UPSTREAM.search(line):
            reason = "condition false" if "conditional" in line else "upstream failed"
            self.skipped[m.group(1)] = reason
            self.listener.task_skipped(m.group(1), reason)
        elif self._current is not None:
            self._lines.append(line)
            if self._task_log is not None:
                self._task_log.write(line + "\n")


@contextlib.contextmanager
def log_to(stream: io.TextIOBase) -> Iterator[None]:
    """Root-logger INFO records go to `stream` (kfp.local swaps in its own handler around each task)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s", "%H:%M:%S"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
