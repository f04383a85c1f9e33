"""Offline evaluation shared by every model: Retriever contract, metrics, harness, parity gate."""
from onevision.evaluation.harness import EvalConfig, evaluate, run_evaluation
from onevision.evaluation.parity import ParityGate, ParityInputError, ParityReport, load_parity
from onevision.evaluation.result import STABLE_KEYS, EvaluationResult, compare_table, load_result, metric_keys
from onevision.evaluation.retriever import PopularityRetriever, RandomRetriever, Ranking, Retriever

__all__ = [
    "STABLE_KEYS", "EvalConfig", "EvaluationResult", "ParityGate", "ParityInputError", "ParityReport",
    "PopularityRetriever", "RandomRetriever", "Ranking", "Retriever", "compare_table", "evaluate",
    "load_parity", "load_result", "metric_keys", "run_evaluation",
]
