"""Per-step progress of a local run, read from kfp.local's log lines."""
from __future__ import annotations

from pathlib import Path

from pipelines.progress import ProgressStream, exception_text

TRACEBACK = """\
    Traceback (most recent call last):
      File "<frozen runpy>", line 198, in _run_module_as_main
      File "/venv/kfp/dsl/executor.py", line 453, in execute
        result = self.func(**func_kwargs)
                 ^^^^^^^^^^^^^^^^^^^^^^^^
      File "/work/onevision/validation/gate.py", line 125, in validate_world
        raise DataValidationError(_error_message(world_dir, report), report)
    onevision.validation.report.DataValidationError: data validation failed for /w: 1 failed expectation
      - items.item_id: expect_column_values_to_be_unique (primary key) failed
""".splitlines()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def task_started(self, task: str) -> None:
        self.events.append(("started", task))

    def task_finished(self, task: str, succeeded: bool, seconds: float, error: str | None) -> None:
        self.events.append(("finished", task, succeeded, error))

    def task_skipped(self, task: str, reason: str) -> None:
        self.events.append(("skipped", task, reason))

    def task_cached(self, task: str) -> None:
        self.events.append(("cached", task))


def test_exception_text_is_the_exception_after_the_last_frame() -> None:
    assert exception_text(TRACEBACK) == (
        "onevision.validation.report.DataValidationError: data validation failed for /w: 1 failed expectation\n"
        "- items.item_id: expect_column_values_to_be_unique (primary key) failed"
    )


def test_exception_text_is_none_without_a_traceback() -> None:
    assert exception_text(["all good"]) is None


def test_stream_turns_kfp_local_lines_into_events_and_task_logs(tmp_path: Path) -> None:
    recorder = Recorder()
    stream = ProgressStream(tmp_path, recorder)
    stream.write("22:39:34.839 - INFO - Executing task \x1b[96m'validate-data'\x1b[0m\n")
    stream.write("\n".join(TRACEBACK) + "\n")
    stream.write("22:39:53.664 - ERROR - Task \x1b[96m'validate-data'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m\n")
    stream.write("22:39:53 - INFO - Skipping task train-encoder: upstream task(s) ['validate-data'] failed.\n")
    stream.write("22:39:54 - INFO - Task ingest-world cache hit (key=0123456789ab); skipping execution.\n")
    stream.write("22:39:55 - INFO - Skipping conditional task condition-2 (condition evaluated to False)")
    stream.close()
    assert [e[:2] for e in recorder.events] == [("started", "validate-data"), ("finished", "validate-data"),
                                               ("skipped", "train-encoder"), ("cached", "ingest-world"),
                                               ("skipped", "condition-2")]
    assert recorder.events[1][3].startswith("onevision.validation.report.DataValidationError")
    assert stream.cached == {"ingest-world": "0123456789ab"}
    assert stream.skipped == {"train-encoder": "upstream failed", "condition-2": "condition false"}
    assert "DataValidationError" in (tmp_path / "validate-data.log").read_text()
    assert "Executing task 'validate-data'" in (tmp_path / "pipeline.log").read_text()
