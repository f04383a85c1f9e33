"""The README's rollout walkthrough, run as written against real local servers.

A directory laid out as `make run` leaves it (`runs/local/world`, `runs/local/bundles/{generator,cascade}`,
`runs/local/parity/parity.json`, built here from the tiny trained bundles) is the working directory, and every
`onevision` command of steps 2-6 runs there as a subprocess of the installed CLI: the archives are built, a
real TorchServe serves both, both replays (in process and over HTTP against that TorchServe) run, the comparison,
the drift report and the alert review run, and the server is stopped with the command `serve local` printed.
Only two things are changed: the inference port (a free one instead of 8085) and the `serve stop --workdir ...`
placeholder, run with the directory `serve local` printed once the steps that use the server are done. Steps that need a cluster (a canary command without `--current`) are checked for their clear
refusal instead; the offline canary steps run against the sample objects in docs/examples/.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from serving.cli import STATE_FILE
from tests.unit.test_readme_walkthrough import ROOT, walkthrough_commands

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).with_name("onevision")
README_PORT = "8085"


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


@pytest.fixture(scope="module")
def workdir(tiny_bundles, tmp_path_factory) -> Path:
    from onevision.bundle import bundle_identity

    root = tmp_path_factory.mktemp("walkthrough")
    local = root / "runs" / "local"
    (local / "bundles").mkdir(parents=True)
    (local / "parity").mkdir()
    (local / "world").symlink_to(tiny_bundles.world)
    (local / "bundles" / "generator").symlink_to(tiny_bundles.generator)
    (local / "bundles" / "cascade").symlink_to(tiny_bundles.cascade)
    (local / "parity" / "parity.json").write_text(json.dumps({"passed": True, "reasons": [], "bundles": {
        "generator": bundle_identity(tiny_bundles.generator), "cascade": bundle_identity(tiny_bundles.cascade)}}))
    (root / "docs").symlink_to(ROOT / "docs")
    return root


def run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BROWSER": "true", "NO_COLOR": "1"}  # `--open` hands the URL to `true`
    env.pop("KUBECONFIG", None)
    return subprocess.run([str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def needs_cluster(args: list[str]) -> bool:
    return args[0] == "canary" and "--current" not in args


def test_the_walkthrough_runs_as_written_against_local_servers(workdir: Path, tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"  # no kubeconfig: the cluster steps must refuse clearly
    home.mkdir()
    os.environ["HOME"], old_home = str(home), os.environ.get("HOME", "")
    server_workdir: str | None = None
    ran: list[str] = []
    try:
        for args in walkthrough_commands():
            args = [a.replace(README_PORT, port) for a in args]
            result = run(args, workdir)
            ran.append(" ".join(args[:2]))
            if needs_cluster(args):
                assert result.returncode != 0 and "cannot reach a cluster" in result.stderr, result.stderr
                continue
            assert result.returncode == 0, f"onevision {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            if args[:2] == ["serve", "local"]:
                found = re.search(r"onevision serve stop --workdir (\S+)", result.stdout)
                server_workdir = found.group(1) if found else None
                assert f"http://127.0.0.1:{port}/v2/models/generator/infer" in result.stdout, result.stdout
        assert server_workdir, "`serve local` did not print its stop command"
        stopped = run(["serve", "stop", "--workdir", server_workdir], workdir)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
        ran.append("serve stop")
    finally:
        if server_workdir and (Path(server_workdir) / STATE_FILE).exists():
            run(["serve", "stop", "--workdir", server_workdir], workdir)
        os.environ["HOME"] = old_home

    assert ran.count("serve build") == 2 and "serve local" in ran and "serve stop" in ran
    assert ran.count("ab replay") == 2 and "drift report" in ran and "drift review" in ran
    http = workdir / "runs" / "local" / "ab-http"
    assert any(http.rglob("*.parquet")), "the HTTP replay wrote no logs"
    assert any((workdir / "runs" / "local" / "drift").rglob("*.html")), "the drift report wrote no HTML"
