from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from onevision.threads import one_blas_thread


def test_one_blas_thread_limits_every_openblas_then_restores(openblas_threads) -> None:
    np.ones((4, 4)) @ np.ones((4, 4))  # NumPy's OpenBLAS is loaded
    with threadpool_limits(limits=2, user_api="blas"):
        before = openblas_threads.now()
        assert before
        with one_blas_thread():
            assert openblas_threads.now() == [1] * len(before)
            with one_blas_thread():  # nested: still one, and the inner exit leaves the outer limit alone
                pass
            assert openblas_threads.now() == [1] * len(before)
        assert openblas_threads.now() == before


def test_one_blas_thread_restores_after_an_error(openblas_threads) -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        before = openblas_threads.now()
        with pytest.raises(RuntimeError), one_blas_thread():
            raise RuntimeError("boom")
        assert openblas_threads.now() == before
