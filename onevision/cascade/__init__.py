"""The multi-stage cascade baseline (MCA): ANN recall -> pre-rank -> personalised rank."""
from onevision.cascade.cascade import STAGES, Cascade, StageTimings
from onevision.cascade.candidates import Candidates
from onevision.cascade.config import CascadeConfig, PreRankConfig, RankConfig, RecallConfig, ScorerConfig
from onevision.cascade.items import ItemTable
from onevision.cascade.prerank import PreRanker
from onevision.cascade.rank import Ranker
from onevision.cascade.recall import AnnRecall

__all__ = [
    "STAGES", "AnnRecall", "Candidates", "Cascade", "CascadeConfig", "ItemTable", "PreRankConfig", "PreRanker",
    "RankConfig", "Ranker", "RecallConfig", "ScorerConfig", "StageTimings",
]
