"""Offline evaluation shared by every model (any onevision.contracts.Retriever): metrics, harness, parity gate."""
from onevision.evaluation.harness import EvalConfig, evaluate, run_evaluation
from onevision.evaluation.parity import (
    ParityBindingError, ParityGate, ParityInputError, ParityReport, load_parity, require_verdict_for,
)
from onevision.evaluation.result import STABLE_KEYS, EvaluationResult, compare_table, load_result, metric_keys
from onevision.evaluation.retriever import PopularityRetriever, RandomRetriever

__all__ = [
    "STABLE_KEYS", "EvalConfig", "EvaluationResult", "ParityBindingError", "ParityGate", "ParityInputError", "ParityReport",
    "PopularityRetriever", "RandomRetriever", "compare_table", "evaluate",
    "load_parity", "load_result", "metric_keys", "require_verdict_for", "run_evaluation",
]
