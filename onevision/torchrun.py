"""Run an `onevision` command on N local ranks with torchrun (torch's own launcher,
`python -m torch.distributed.run`), and report a failed rank by its rank, exit code and error.

Each rank runs `python -m onevision.torchrun ARGS` (this module's `__main__`): the `onevision` command, with a
wrapper that writes the rank's error (exit code, exception) to ``$ONEVISION_RANK_ERRORS/rank-<r>.json``, which
the launching process reads once torchrun returns.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

ERRORS_ENV = "ONEVISION_RANK_ERRORS"
RANK_MODULE = "onevision.torchrun"


@dataclass(frozen=True)
class RankFailure(Exception):
    """A distributed run failed: the first rank that reported an error (or only torchrun's exit code)."""

    exit_code: int
    rank: int | None = None
    message: str | None = None

    def __str__(self) -> str:
        if self.rank is None:
            return f"torchrun exited with code {self.exit_code} and no rank reported an error (killed?)"
        detail = self.message or "see its output above"
        return f"rank {self.rank} failed with exit code {self.exit_code}: {detail}"


def launcher_args(nproc: int, nnodes: int | None = 1) -> list[str]:
    """torchrun's options: `--standalone --nnodes 1` for one machine; on a cluster (`nnodes=None`) the number
    of nodes, this node's rank and the master's address come from the PET_* variables Kubeflow Trainer sets."""
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    local = ["--standalone", "--nnodes", str(nnodes)] if nnodes is not None else []
    return [*local, "--nproc-per-node", str(nproc)]


def rank_command(args: list[str], launcher: list[str], python: str = sys.executable) -> list[str]:
    """`python -m torch.distributed.run LAUNCHER -m onevision.torchrun ARGS`."""
    return [python, "-m", "torch.distributed.run", *launcher, "-m", RANK_MODULE, *args]


def run_local(nproc: int, args: list[str]) -> None:
    """Run `onevision ARGS` on `nproc` local CPU/GPU ranks; raise RankFailure when it fails."""
    with tempfile.TemporaryDirectory(prefix="onevision-ranks-") as errors:
        env = {**os.environ, ERRORS_ENV: errors}
        code = subprocess.run(rank_command(args, launcher_args(nproc)), env=env).returncode
        if code != 0:
            raise first_failure(Path(errors), code)


def first_failure(errors: Path, torchrun_code: int) -> RankFailure:
    reports = sorted((json.loads(p.read_text()) for p in errors.glob("rank-*.json")), key=lambda r: (r["time"], r["rank"]))
    if not reports:
        return RankFailure(torchrun_code)
    first = reports[0]
    return RankFailure(first["exit_code"], first["rank"], first["message"])


def _report(exit_code: int, message: str | None) -> None:
    errors = os.environ.get(ERRORS_ENV)
    if not errors:
        return
    import time

    rank = int(os.environ.get("RANK", "0"))
    Path(errors, f"rank-{rank}.json").write_text(json.dumps(
        {"rank": rank, "exit_code": exit_code, "message": message, "time": time.time()}))


class _ErrorLines:
    """sys.stderr, remembering the last `error: ...` line a command printed (`onevision.cli_support.fail`)."""

    def __init__(self, stream):
        self._stream, self.last = stream, None

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.startswith("error: "):
                self.last = line[len("error: "):]
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def rank_main(argv: list[str]) -> int:
    """One rank: the `onevision` command with `argv`; its failure is reported before the process exits."""
    from onevision.cli import app
    from onevision.storage import CACHE_DIR_ENV_VAR, default_cache_dir

    # Local ranks share a machine: each downloads its S3 inputs into its own cache (a download replaces the copy).
    os.environ[CACHE_DIR_ENV_VAR] = str(default_cache_dir() / f"rank-{os.environ.get('LOCAL_RANK', '0')}")
    errors = sys.stderr = _ErrorLines(sys.stderr)
    try:
        app(argv, prog_name="onevision", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code:
            _report(code, errors.last if exc.code is None or isinstance(exc.code, int) else str(exc.code))
        return code
    except BaseException as exc:  # noqa: BLE001 - reported, then re-raised for torchrun's own summary
        _report(1, f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - run by torchrun in every rank
    sys.exit(rank_main(sys.argv[1:]))
