"""The process group of a data-parallel training run: torch.distributed, set up from the variables torchrun
exports (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); gloo on CPU, nccl on GPU.

One process without torchrun is the group `SINGLE`: every helper here is then the identity, so a
single-process run takes exactly the code path (and gives exactly the bytes) it did before DDP existed.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

T = TypeVar("T")
TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: one process, no torch.distributed

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints and artifacts."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This rank's share of a global batch: every world_size-th row from its rank on. The global batch is
        drawn identically on every rank (same per-epoch seed), so the shards partition it."""
        return rows[self.rank :: self.world_size] if self.distributed else rows

    def share(self, part: float, whole: float) -> float:
        """The factor that turns the mean over this rank's `part` of a global batch into its contribution to
        the global mean, once DDP averages gradients over ranks: world_size * part / whole (1 alone)."""
        return self.world_size * part / whole if self.distributed and whole else 1.0

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` under DistributedDataParallel (gradients averaged across ranks; rank 0's parameters are
        broadcast on construction), or itself when alone."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.backend == "nccl" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj: T) -> T:
        """Rank 0's `obj` on every rank (any picklable value)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, values: list[float]) -> list[float]:
        """Element-wise mean of `values` over the ranks (every rank passes a list of the same length)."""
        if not self.distributed or not values:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return (t / self.world_size).tolist()

    def main_only(self, action: Callable[[], Any]) -> None:
        """Run `action` on rank 0 only, then wait for it on every rank."""
        if self.is_main:
            action()
        self.barrier()


SINGLE = ProcessGroup()


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_ENV)


def backend_for(cuda: bool) -> str:
    return "nccl" if cuda else "gloo"


def init_from_env() -> ProcessGroup:
    """The group torchrun started this process in (`SINGLE` outside torchrun or with one rank)."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    group = ProcessGroup(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]),
                         backend_for(torch.cuda.is_available()))
    if group.backend == "nccl":
        torch.cuda.set_device(group.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(group.backend, rank=group.rank, world_size=group.world_size)
    return group


def teardown(group: ProcessGroup) -> None:
    if group.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


@contextlib.contextmanager
def process_group() -> Iterator[ProcessGroup]:
    group = init_from_env()
    try:
        yield group
    finally:
        teardown(group)
