"""Thread pools of a block of work: torch's intra-op threads and the BLAS libraries' own."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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


_openblas: tuple[int, list[Any]] | None = None  # (len(sys.modules) when scanned, the pools)


def _openblas_pools() -> list[Any]:
    """Every OpenBLAS loaded in this process (NumPy's and faiss's each bring their own). Scanned again only
    when modules were imported since (a library such as faiss may bring one; a scan costs ~0.3 ms)."""
    global _openblas
    if _openblas is None or _openblas[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        pools = [lib for lib in ThreadpoolController().lib_controllers if lib.internal_api == "openblas"]
        _openblas = (len(sys.modules), pools)
    return _openblas[1]


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Every OpenBLAS on one thread while a query's work runs. A query's matmuls are small (the generator's
    decoder rows, the cascade's ranker features, faiss's batched inner products), so a second BLAS thread buys
    nothing, but after each call it spins on the core torch's own threads need for the next CNN or decoder
    step: at 2 torch threads that made the generator's decode 3x slower and the cascade's batch of 8 4x slower.
    Restored after, so the process's other NumPy work keeps its threads."""
    pools = _openblas_pools()
    before = [lib.num_threads for lib in pools]
    for lib, n in zip(pools, before):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(pools, before):
            if n != 1:
                lib.set_num_threads(n)
