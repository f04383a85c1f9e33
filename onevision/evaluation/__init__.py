"""Offline evaluation shared by every model (any onevision.contracts.Retriever): metrics, harness, parity gate.

Names are imported on first use, so the gate's defaults (`onevision.evaluation.parity`) load without the harness."""
from onevision.lazy import lazy_exports

_EXPORTS = {
    "EvalConfig": "onevision.evaluation.config",
    **{name: "onevision.evaluation.harness" for name in ("evaluate", "run_evaluation")},
    **{name: "onevision.evaluation.parity" for name in ("ParityBindingError", "ParityGate", "ParityInputError",
                                                         "ParityReport", "load_parity", "require_verdict_for")},
    **{name: "onevision.evaluation.result" for name in ("STABLE_KEYS", "EvaluationResult", "compare_table",
                                                         "load_result", "metric_keys")},
    **{name: "onevision.evaluation.retriever" for name in ("PopularityRetriever", "RandomRetriever")},
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
