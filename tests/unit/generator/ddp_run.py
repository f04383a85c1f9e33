"""Run by torchrun in the distributed tests: train generator stages on every rank of the group torchrun set up.

    python -m torch.distributed.run --standalone --nnodes 1 --nproc-per-node N ddp_run.py SPEC.json

SPEC: world, encoder, vrq, root (stage s goes to root/g<s>), config (GeneratorTrainingConfig fields), stages,
and optionally crash_at [stage, epoch, step]: rank 0 raises before that step (a run killed mid-epoch).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from onevision import steps
from onevision.distributed import process_group
from onevision.generator import train as gt
from onevision.generator.staging import GeneratorTrainingConfig


def crash_before(stage: int, epoch: int, step: int) -> None:
    run = gt.StageTrainer.run

    def crashing_run(self, epoch_batches, *args, **kwargs):
        def batches(e):
            for i, s in enumerate(epoch_batches(e)):
                if self.group.is_main and (self.stage, e, i) == (stage, epoch, step):
                    raise RuntimeError(f"test crash: stage {stage} epoch {epoch} step {step}")
                yield s
        return run(self, batches, *args, **kwargs)

    gt.StageTrainer.run = crashing_run


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    if spec.get("crash_at"):
        crash_before(*spec["crash_at"])
    cfg = GeneratorTrainingConfig(**spec["config"])
    root, previous = Path(spec["root"]), None
    with process_group() as group:
        assert group.world_size == spec["world_size"], group
        for stage in spec["stages"]:
            out = root / f"g{stage}"
            steps.train_generator_step(Path(spec["world"]), Path(spec["encoder"]), Path(spec["vrq"]), out, stage,
                                       previous, cfg, show_progress=False, group=group,
                                       reward_dir=Path(spec["reward"]) if spec.get("reward") else None)
            previous = out


if __name__ == "__main__":
    main(sys.argv[1])
