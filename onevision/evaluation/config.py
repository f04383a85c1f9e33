"""What an offline evaluation measures, apart from the harness so that step configs load without numpy."""
from __future__ import annotations

from dataclasses import dataclass

from onevision.evaluation.result import DEFAULT_KS, DEFAULT_PROXY_K


@dataclass(frozen=True)
class EvalConfig:
    split: str = "test"
    ks: tuple[int, ...] = DEFAULT_KS
    batch_size: int = 64
    max_queries: int | None = None  # the first N queries of the split (time order); None = all
    personalized: bool = True  # False: the retriever gets user_ids=None
    proxy_k: int = DEFAULT_PROXY_K  # cut-off of the CTR/CVR/orders proxies
    latency_samples: int = 100  # batch-1 calls for p50/p95 (0: use the batched timings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(int(k) for k in dict.fromkeys(self.ks)))  # ordered, no repeats
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError(f"ks must be a non-empty list of cut-offs >= 1, got {self.ks}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be >= 1 or None, got {self.max_queries}")
        if self.proxy_k < 1 or self.latency_samples < 0:
            raise ValueError(f"proxy_k must be >= 1 and latency_samples >= 0, got {self.proxy_k}, {self.latency_samples}")

    @property
    def retrieve_k(self) -> int:
        return max(max(self.ks), self.proxy_k)
