"""The multi-stage cascade baseline (MCA): ANN recall -> pre-rank -> personalised rank.

Names are imported on first use, so `onevision.cascade.config` loads without numpy and torch."""
from onevision.lazy import lazy_exports

_EXPORTS = {
    "STAGES": "onevision.cascade.cascade", "Cascade": "onevision.cascade.cascade",
    "StageTimings": "onevision.cascade.cascade", "Candidates": "onevision.cascade.candidates",
    **{name: "onevision.cascade.config" for name in ("CascadeConfig", "PreRankConfig", "RankConfig", "RecallConfig",
                                                      "ScorerConfig")},
    "ItemTable": "onevision.cascade.items", "PreRanker": "onevision.cascade.prerank", "Ranker": "onevision.cascade.rank",
    "AnnRecall": "onevision.cascade.recall",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
