"""Benchmark: what makes the generator personalise — an ablation, trained and evaluated in one run.

Every variant is the same generator evaluated twice on the test split, with and without user ids, so its
personalisation lift (CTR proxy@10 with users / without) is measured on the same model; the cascade is
evaluated the same way in the same run. Variants:

- visual SID: VRQ without the attribute level, free user tokens (the first-wave design), stages 1-3;
- attribute SID, stage 1 only (no user inputs);
- attribute SID + free user tokens only (stage 2);
- attribute SID + the user x attribute term (stage 2), then + tokens, and after stage 3 (DPO);
- attribute SID + the user x category term at level 0 alone (stage 2);
- both terms (stage 2), then stage 3 with DPO on the logged slates, and on the model's own beam lists ranked by
  the cascade's ranker as the reward model (the default).

    python bench/personalization.py --world runs/local/world --encoder runs/local/bundles/generator/encoder \
        --cascade-bundle runs/local/bundles/cascade --out runs/bench/personalization

About 20 minutes on 2 cores (two stage-1 trainings). `--stage1-epochs` shortens it for a smoke run.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from onevision import steps
from onevision.generator.staging import GeneratorTrainingConfig
from onevision.evaluation.config import EvalConfig
from onevision.vrq.config import VRQConfig

COLUMNS = ("recall@10", "ndcg@10", "ctr_proxy@10", "ctr_proxy_without_users@10", "personalisation_lift@10",
           "slate_preference@10", "cvr_proxy@10", "orders_proxy@10")


@dataclass(frozen=True)
class Variant:
    name: str
    attribute_sid: bool
    stages: tuple[int, ...]
    generator: dict = field(default_factory=dict)  # GeneratorTrainingConfig overrides

    def key(self, with_stages: bool = False) -> str:
        """What shapes the trained stages (so variants that differ only by their last stage share the rest)."""
        parts = [self.attribute_sid, self.generator] + ([self.stages] if with_stages else [])
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]


_NO_CATEGORY = {"category_scorer": False}
VARIANTS = (
    Variant("visual SID + user tokens, stages 1-3 (first wave)", False, (1, 2, 3),
            {"user_tokens": True, "affinity_scorer": False, "category_scorer": False, "dpo_beta": 0.5,
             "preferences": "logged"}),
    Variant("attribute SID, stage 1 (no user inputs)", True, (1,)),
    Variant("attribute SID + user tokens, stage 2", True, (1, 2),
            {"user_tokens": True, "affinity_scorer": False, **_NO_CATEGORY}),
    Variant("attribute SID + user x attribute term, stage 2", True, (1, 2), _NO_CATEGORY),
    Variant("attribute SID + attribute term + user tokens, stage 2", True, (1, 2), {"user_tokens": True, **_NO_CATEGORY}),
    Variant("attribute SID + attribute term, stages 1-3 (DPO on logged slates)", True, (1, 2, 3),
            {**_NO_CATEGORY, "preferences": "logged"}),
    Variant("attribute SID + user x category term, stage 2", True, (1, 2), {"affinity_scorer": False}),
    Variant("attribute SID + attribute and category terms, stage 2", True, (1, 2)),
    Variant("attribute SID + both terms, stages 1-3 (DPO on logged slates)", True, (1, 2, 3), {"preferences": "logged"}),
    Variant("attribute SID + both terms, stages 1-3 (DPO on own beam lists x reward; default)", True, (1, 2, 3)),
)


def train(world: Path, encoder: Path, root: Path, variant: Variant, stage1_epochs: int | None, reward: Path) -> Path:
    """Train (or reuse) the variant's stages; stage-1 models and VRQ artifacts are shared between variants."""
    vrq = root / ("vrq-attribute" if variant.attribute_sid else "vrq-visual")
    if not (vrq / "trie.npz").exists():
        cfg = steps.VRQStepConfig(VRQConfig(attribute_level=1 if variant.attribute_sid else None), compare_baselines=False)
        steps.train_vrq_step(world, encoder, vrq, cfg, show_progress=False)
    gcfg = dataclasses.replace(GeneratorTrainingConfig(), **variant.generator)
    if stage1_epochs is not None:
        gcfg = dataclasses.replace(gcfg, stage1_epochs=stage1_epochs)
    previous: Path | None = None
    for stage in variant.stages:
        # stage 1 ignores the user settings, so variants share it; later stages are keyed by what shapes them
        key = vrq.name if stage == 1 else f"{vrq.name}-{variant.key()}"
        out = root / f"stage{stage}-{key}"
        if not (out / "stage.json").exists():
            steps.train_generator_step(world, encoder, vrq, out, stage, previous, gcfg, show_progress=False,
                                       reward_dir=reward)
        previous = out
    bundle = root / f"bundle-{variant.key(with_stages=True)}"
    users = previous / "userfeatures"
    return steps.make_bundle_step("generator", bundle, encoder_dir=encoder, vrq_dir=vrq, generator_dir=previous,
                                  userfeatures_dir=users if users.exists() else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--encoder", type=Path, required=True, help="trained encoder directory (with catalogue features)")
    ap.add_argument("--cascade-bundle", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/personalization"))
    ap.add_argument("--queries", type=int, default=None, help="first N test queries (default: all)")
    ap.add_argument("--stage1-epochs", type=int, default=None, help="shorter stage 1 for a smoke run")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    eval_cfg = steps.EvalStepConfig(EvalConfig(latency_samples=0, max_queries=args.queries))
    rows: list[tuple[str, dict]] = []
    cascade = steps.evaluate_step(args.cascade_bundle, args.world, args.out / "eval-cascade", eval_cfg, show_progress=False)
    rows.append(("cascade (ANN -> pre-rank -> personalised rank)", cascade))
    for i, variant in enumerate(VARIANTS):
        print(f"[{i + 1}/{len(VARIANTS)}] {variant.name}", flush=True)
        bundle = train(args.world, args.encoder, args.out, variant, args.stage1_epochs, args.cascade_bundle / "cascade")
        rows.append((variant.name, steps.evaluate_step(bundle, args.world, args.out / f"eval-{i}", eval_cfg,
                                                       show_progress=False)))
    short = {"ctr_proxy_without_users@10": "CTR@10 w/o users", "personalisation_lift@10": "lift",
             "slate_preference@10": "slate pref. (2-10)"}
    header = ["variant", *(short.get(c, c) for c in COLUMNS), "CTR vs cascade"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, m in rows:
        cells = [f"{m[c]:.4f}" if m[c] is not None else "—" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {m['ctr_proxy@10'] / cascade['ctr_proxy@10']:.3f} |")
    table = "\n".join(lines)
    print(f"\ntest split, {rows[0][1]['n_queries']} queries; lift = CTR proxy@10 with users / without, same model\n")
    print(table)
    (args.out / "ablation.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
