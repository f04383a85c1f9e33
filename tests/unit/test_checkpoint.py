from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from onevision.checkpoint import load_module, save_module, write_atomic


@dataclass(frozen=True)
class _Config:
    sizes: tuple[int, ...] = (3, 2)
    bias: bool = True


class _Net(nn.Module):
    def __init__(self, config: _Config):
        super().__init__()
        self.config = config
        self.layer = nn.Linear(*config.sizes, bias=config.bias)


def test_saved_weights_are_the_bytes_of_a_direct_torch_save(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _Net(_Config())
    save_module(net, net.config, tmp_path / "atomic", "net.pt", "net.json")
    (tmp_path / "direct").mkdir()
    torch.save(net.state_dict(), tmp_path / "direct" / "net.pt")
    assert (tmp_path / "atomic" / "net.pt").read_bytes() == (tmp_path / "direct" / "net.pt").read_bytes()
    assert sorted(p.name for p in (tmp_path / "atomic").iterdir()) == ["net.json", "net.pt"]


def test_a_module_loads_back_with_its_config_and_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _Net(_Config(sizes=(4, 3), bias=False))
    save_module(net, net.config, tmp_path, "net.pt", "net.json")
    again = load_module(_Net, _Config, tmp_path, "net.pt", "net.json", "net")
    assert again.config == net.config and not again.training
    assert torch.equal(again.layer.weight, net.layer.weight)


def test_a_missing_config_names_the_artifact_and_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"net artifact missing: .*net\.json"):
        load_module(_Net, _Config, tmp_path, "net.pt", "net.json", "net")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "net.json"
    target.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["net.json"]
