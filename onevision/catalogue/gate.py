"""The refresh gate: after a refresh, new items must be found almost as well as old ones, and old items exactly
as well as before."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onevision.catalogue.evaluate import ListingRecall

REFRESH_GATE_FILE = "refresh_gate.json"


@dataclass(frozen=True)
class RefreshGate:
    new_within: float = 0.10  # new items' recall >= (1 - new_within) x old items' recall after the refresh
    old_tolerance: float = 0.01  # old items' recall may move by at most this much (absolute) in the refresh

    def check(self, before: ListingRecall, after: ListingRecall) -> RefreshGateReport:
        reasons = []
        if after.n_new == 0 or math.isnan(after.new):
            reasons.append("no queries for new items to judge the refresh on")
        elif after.new < (1 - self.new_within) * after.old:
            reasons.append(f"new items' recall@{after.k} {after.new:.3f} is below {1 - self.new_within:.0%} of old "
                           f"items' {after.old:.3f}")
        if abs(after.old - before.old) > self.old_tolerance:
            reasons.append(f"old items' recall@{after.k} moved from {before.old:.3f} to {after.old:.3f} "
                           f"(more than {self.old_tolerance:.3f})")
        return RefreshGateReport(not reasons, reasons, asdict(self), before.to_json(), after.to_json())


@dataclass
class RefreshGateReport:
    passed: bool
    reasons: list[str]
    gate: dict
    before: dict
    after: dict = field(default_factory=dict)

    def markdown(self) -> str:
        rows = ["| | old items | new items |", "|---|---|---|"]
        for name, r in (("before", self.before), ("after", self.after)):
            rows.append(f"| {name} | {r['old']:.3f} ({r['n_old']}) | {r['new']:.3f} ({r['n_new']}) |")
        verdict = "passed" if self.passed else "failed: " + "; ".join(self.reasons)
        return f"# Refresh gate: {verdict}\n\nrecall@{self.after.get('k', '')} (queries)\n\n" + "\n".join(rows) + "\n"

    def save(self, directory: Path) -> Path:
        path = Path(directory) / REFRESH_GATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path
