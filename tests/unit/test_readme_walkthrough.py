"""The README's rollout walkthrough as written: every `onevision` command in it parses against the real CLI (no
unknown option, no missing required one, no sub-command that does not exist), and its offline dry runs run."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from onevision.cli import app

ROOT = Path(__file__).resolve().parents[2]
WALKTHROUGH = "## A canary rollout, end to end"


def walkthrough_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index(WALKTHROUGH):].split("```bash\n", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).strip()  # comments and [optional] parts
        if line.startswith("onevision ") and "..." not in line:
            commands.append(shlex.split(line)[1:])
    return commands


def parse(args: list[str]) -> click.Context:
    """Resolve sub-commands and parse options the way running the command would, without running it."""
    command: click.Command = typer.main.get_command(app)
    ctx = command.make_context("onevision", list(args), resilient_parsing=False)
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, ctx.protected_args + ctx.args)
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


def test_the_walkthrough_has_its_commands() -> None:
    assert len(walkthrough_commands()) >= 10


@pytest.mark.parametrize("args", walkthrough_commands(), ids=lambda a: " ".join(a[:2]))
def test_every_walkthrough_command_parses(args: list[str]) -> None:
    parse(args)


@pytest.mark.parametrize("args", [a for a in walkthrough_commands() if a[0] == "canary" and "--current" in a],
                         ids=lambda a: " ".join(a[:2]))
def test_the_offline_canary_steps_run_as_written(args: list[str], monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
