"""Run a block of torch work on one intra-op thread."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def single_torch_thread() -> Iterator[None]:
    """Small steps are dominated by thread hand-offs, so one intra-op thread is faster and does not fight other
    processes for the cores; and parallel CPU reductions (index_add_, faiss's centroid sums) are not
    deterministic, so one thread also makes a seeded fit give the same result every run."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
