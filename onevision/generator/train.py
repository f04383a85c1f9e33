"""Staged training of the SID generator. Each stage is a separate, resumable step with its own checkpoint.

- stage 1, visual alignment: every shop view and user photo → its item's SID (teacher-forced CE);
- stage 2, personalisation: query photo + user → SID of clicked/ordered items (orders weighted higher),
  mixed with stage-1 examples so the visual prior is kept; user tokens are dropped at random so the
  non-personalised path keeps working;
- stage 3, preference alignment: listwise DPO of (ordered or clicked) over (shown, not clicked) SIDs of the
  same query, with the frozen stage-2 model as reference, plus a small SFT term on the chosen items.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from onevision.distributed import SINGLE, ProcessGroup
from onevision.generator.data import QueryLog, UserContext, VisualExamples, make_input
from onevision.generator.model import USER_TERM_SCORERS, GeneratorInput, SidGenerator
from onevision.generator.preferences import PreferenceLists
from onevision.userfeatures import UserFeatureTable
from onevision.vrq.fit import VRQArtifact

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
Step = Callable[[SidGenerator], torch.Tensor]  # one optimiser step's loss, computed with the model it is given


@dataclass(frozen=True)
class StageConfig:
    epochs: int = 12
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    token_drop_prob: float = 0.5  # chance a batch is trained with a random subset of image tokens
    min_keep_tokens: int = 4
    user_drop_prob: float = 0.2  # stage 2/3: chance a batch is trained without user tokens
    order_weight: float = 3.0  # stage 2: weight of an ordered item relative to a click
    visual_mix: float = 0.5  # stage 2/3: share of each batch drawn from stage-1 examples
    dpo_beta: float = 0.5
    dpo_negatives: int = 4
    sft_weight: float = 0.2  # stage 3
    # The user x attribute scorer has a handful of weights that start at 0; at the network's lr they would
    # move by at most lr per step and stay near 0 over a stage's few hundred steps (lift 1.03).
    affinity_lr: float = 0.05
    # Step budget of a visual (stage-1) epoch set: at most max_steps optimiser steps over all epochs (each epoch
    # trains max_steps / epochs batches); None: every example every epoch.
    max_steps: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError(f"invalid stage config (epochs >= 1, batch_size >= 1, max_steps >= 1 or None): {self}")

    def batches_per_epoch(self, available: int) -> int:
        if self.max_steps is None:
            return available
        return min(available, -(-self.max_steps // self.epochs))

    def examples_read(self) -> int | None:
        """How many distinct examples the step budget can read (None: no budget)."""
        return None if self.max_steps is None else self.max_steps * self.batch_size


def sid_loss(logits: list[torch.Tensor], sids: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    per_example = sum(F.cross_entropy(l, sids[:, i], reduction="none") for i, l in enumerate(logits))
    if weights is None:
        return per_example.mean()
    return (per_example * weights).sum() / weights.sum()


def _keep_tokens(cfg: StageConfig, n_tokens: int, rng: np.random.Generator) -> int | None:
    if rng.random() < cfg.token_drop_prob:
        return int(rng.integers(cfg.min_keep_tokens, n_tokens + 1))
    return None


class _StepLoss(torch.nn.Module):
    """Runs a `Step` on the model as this module's forward, so that DistributedDataParallel sees one forward
    per optimiser step whatever model methods the step calls (stage 2 calls the model twice, stage 3 calls
    `sequence_log_prob`)."""

    def __init__(self, model: SidGenerator):
        super().__init__()
        self.model = model

    def forward(self, step: Step) -> torch.Tensor:
        return step(self.model)


class StageTrainer:
    """Generic resumable loop: one checkpoint per stage (model, optimiser, epoch, losses)."""

    def __init__(self, model: SidGenerator, cfg: StageConfig, out_dir: Path, stage: int, group: ProcessGroup = SINGLE):
        self.model, self.cfg, self.out_dir, self.stage, self.group = model, cfg, Path(out_dir), stage, group
        if group.device.type != "cpu":
            model.to(group.device)
        self.net = group.wrap(_StepLoss(model))
        scorer = [p for n, p in model.named_parameters() if n.startswith(USER_TERM_SCORERS)]
        rest = [p for n, p in model.named_parameters() if not n.startswith(USER_TERM_SCORERS)]
        groups = [{"params": rest}] + ([{"params": scorer, "lr": cfg.affinity_lr, "weight_decay": 0.0}] if scorer else [])
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.epoch = 0
        self.losses: list[float] = []

    def _read_checkpoint(self) -> dict | None:
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only: never code

    def try_resume(self) -> bool:
        """Rank 0 reads the checkpoint and every rank resumes from that same state."""
        path = self.out_dir / CHECKPOINT
        state = self.group.broadcast(self._read_checkpoint() if self.group.is_main else None)
        if state is None:
            return False
        if state["stage"] != self.stage:
            raise ValueError(f"{path} holds a stage-{state['stage']} checkpoint, expected stage {self.stage}")
        if state.get("model_config") != asdict(self.model.config):
            raise ValueError(f"{path} was written by a model with another configuration; "
                             "resume with the same settings or choose a new output directory")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.losses = state["epoch"], state["losses"]
        log.info("resuming stage %d from epoch %d", self.stage, self.epoch)
        return True

    def checkpoint(self) -> None:
        self.group.main_only(self._write_checkpoint)

    def _write_checkpoint(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {"stage": self.stage, "model": self.model.state_dict(), "model_config": asdict(self.model.config), "optimizer": self.opt.state_dict(),
                 "epoch": self.epoch, "losses": self.losses, "config": asdict(self.cfg)}
        torch.save(state, self.out_dir / f"{CHECKPOINT}.tmp")
        (self.out_dir / f"{CHECKPOINT}.tmp").replace(self.out_dir / CHECKPOINT)
        self.model.save(self.out_dir)
        (self.out_dir / "stage.json").write_text(json.dumps(
            {"stage": self.stage, "epochs_done": self.epoch, "losses": self.losses, "config": asdict(self.cfg)}, indent=2) + "\n")

    def run(self, epoch_batches: Callable[[int], Iterator[Step]], show_progress: bool = True,
            stop_after: int | None = None) -> list[float]:
        """epoch_batches(epoch) yields one `Step` per optimiser step; stop_after simulates an interruption (tests).
        An epoch's loss is the mean of its global batches' losses (the same on every rank)."""
        bar = tqdm(range(self.epoch, self.cfg.epochs), desc=f"generator stage {self.stage}", unit="epoch",
                   disable=not (show_progress and self.group.is_main), initial=self.epoch, total=self.cfg.epochs)
        for epoch in bar:
            torch.manual_seed(self.cfg.seed * 1000 + epoch)  # per-epoch seed: a resumed run replays the same epochs
            self.model.train()
            batch_losses = []
            for step in epoch_batches(epoch):
                self.opt.zero_grad(set_to_none=True)
                loss = self.net(step)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.opt.step()
                batch_losses.append(loss.item())
            batch_losses = self.group.mean(batch_losses)  # each rank's share -> the global batch's loss
            self.epoch = epoch + 1
            self.losses.append(float(np.mean(batch_losses)) if batch_losses else float("nan"))
            bar.set_postfix(loss=f"{self.losses[-1]:.4f}")
            log.info("stage %d epoch %d/%d loss %.4f", self.stage, self.epoch, self.cfg.epochs, self.losses[-1])
            self.checkpoint()
            if stop_after is not None and self.epoch >= stop_after:
                break
        self.model.eval()
        return self.losses


def _to_device(value, device: torch.device):
    """Tensors (and the tensors of a batch dataclass) on `device`; untouched on the CPU."""
    if device.type == "cpu" or value is None:
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device)
    return dataclasses.replace(value, **{f.name: _to_device(getattr(value, f.name), device)
                                         for f in dataclasses.fields(value)})


def _device_of(model: SidGenerator) -> torch.device:
    return next(model.parameters()).device


def _zero_loss(model: SidGenerator) -> torch.Tensor:
    """A rank whose shard of a small last batch is empty still takes part in the step (DDP needs every rank)."""
    return sum(p.sum() * 0.0 for p in model.parameters())


def _visual_batches(ex: VisualExamples, cfg: StageConfig, rng: np.random.Generator, n: int | None = None,
                    group: ProcessGroup = SINGLE) -> Iterator[tuple[GeneratorInput, torch.Tensor, float]]:
    """This rank's shard of each global batch of visual examples, and its share of the batch."""
    order = rng.permutation(len(ex.sids))[: n if n is not None else len(ex.sids)]
    for start in range(0, len(order), cfg.batch_size):
        batch = order[start : start + cfg.batch_size]
        rows = group.shard(batch)
        yield make_input(ex.bank, rows), ex.sids[rows], group.share(len(rows), len(batch))


def stage1_batches(model: SidGenerator, ex: VisualExamples, cfg: StageConfig,
                   group: ProcessGroup = SINGLE) -> Callable[[int], Iterator[Step]]:
    n_tokens = ex.bank.tokens.shape[1]

    def step(inp: GeneratorInput, sids: torch.Tensor, keep: int | None, share: float) -> Step:
        def loss(m: SidGenerator) -> torch.Tensor:
            if not len(sids):
                return _zero_loss(m)
            device = _device_of(m)
            targets = _to_device(sids, device)
            value = sid_loss(m(_to_device(inp, device), targets, keep), targets)
            return value * share if group.distributed else value
        return loss

    def batches(epoch: int) -> Iterator[Step]:
        rng = np.random.default_rng([cfg.seed, 1, epoch])
        n = cfg.batches_per_epoch(-(-len(ex.sids) // cfg.batch_size)) * cfg.batch_size
        for inp, sids, share in _visual_batches(ex, cfg, rng, n if n < len(ex.sids) else None, group=group):
            yield step(inp, sids, _keep_tokens(cfg, n_tokens, rng), share)
    return batches


def _user_context(users: UserFeatureTable, vrq: VRQArtifact, logq: QueryLog, rows: np.ndarray, model: SidGenerator,
                  drop: bool) -> UserContext | None:
    if drop or not model.config.user_feature_dim:
        return None
    return UserContext.build(users, vrq, logq.user_ids[rows], model.config.history_len, logq.query_ids[rows],
                             with_affinity=model.config.affinity_features > 0,
                             with_category=model.config.category_features > 0)


def _stage2_visual_per_epoch(n_clicks: int, cfg: StageConfig) -> int:
    return int(n_clicks * cfg.visual_mix / max(1e-6, 1 - cfg.visual_mix))


def stage2_visual_reads(logq: QueryLog, cfg: StageConfig) -> int:
    """How many visual examples stage 2 reads over all its epochs (its bank needs no more)."""
    return max(1, _stage2_visual_per_epoch(int(logq.clicked.sum()), cfg) * cfg.epochs)


def stage2_batches(model: SidGenerator, ex: VisualExamples, logq: QueryLog, users: UserFeatureTable, vrq: VRQArtifact,
                   cfg: StageConfig, group: ProcessGroup = SINGLE) -> Callable[[int], Iterator[Step]]:
    q_rows, s_cols = np.nonzero(logq.clicked)
    weights_all = np.where(logq.ordered[q_rows, s_cols], cfg.order_weight, 1.0).astype(np.float32)
    targets_all = vrq.sids_of(logq.slate_items[q_rows, s_cols])

    def step(inp: GeneratorInput, sids: torch.Tensor, weights: torch.Tensor, share: float, keep: int | None,
             mixed: tuple[GeneratorInput, torch.Tensor, float] | None) -> Step:
        def loss(m: SidGenerator) -> torch.Tensor:
            device = _device_of(m)
            value = None
            if len(sids):
                targets = _to_device(sids, device)
                part = sid_loss(m(_to_device(inp, device), targets, keep), targets, _to_device(weights, device))
                value = part * share if group.distributed else part
            if mixed is not None and len(mixed[1]):
                targets = _to_device(mixed[1], device)
                part = sid_loss(m(_to_device(mixed[0], device), targets, keep), targets)
                part = part * mixed[2] if group.distributed else part
                value = part if value is None else value + part
            return _zero_loss(m) if value is None else value
        return loss

    def batches(epoch: int) -> Iterator[Step]:
        rng = np.random.default_rng([cfg.seed, 2, epoch])
        order = rng.permutation(len(q_rows))
        n_visual = _stage2_visual_per_epoch(len(order), cfg)
        visual = _visual_batches(ex, cfg, rng, n_visual, group)
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            drop = rng.random() < cfg.user_drop_prob
            keep = _keep_tokens(cfg, logq.bank.tokens.shape[1], rng)
            idx = group.shard(batch)
            rows = q_rows[idx]
            user = _user_context(users, vrq, logq, rows, model, drop)
            share = group.share(float(weights_all[idx].sum()), float(weights_all[batch].sum()))
            yield step(make_input(logq.bank, rows, user), torch.from_numpy(targets_all[idx]),
                       torch.from_numpy(weights_all[idx]), share, keep, next(visual, None))
    return batches


def stage3_batches(model: SidGenerator, reference: SidGenerator, logq: QueryLog, users: UserFeatureTable,
                   vrq: VRQArtifact, cfg: StageConfig, preferences: PreferenceLists,
                   group: ProcessGroup = SINGLE) -> Callable[[int], Iterator[Step]]:
    """Listwise DPO (one chosen vs several rejected, the S-DPO form) on the usable rows of `preferences`."""
    usable = preferences.usable()
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)

    def step(inp: GeneratorInput, sids: torch.Tensor, valid: torch.Tensor, n_rows: int, share: float) -> Step:
        def loss(m: SidGenerator) -> torch.Tensor:
            if not n_rows:
                return _zero_loss(m)
            device = _device_of(m)
            batch, targets, ok = _to_device(inp, device), _to_device(sids, device), _to_device(valid, device)
            policy = m.sequence_log_prob(batch, targets).view(n_rows, -1)
            with torch.no_grad():
                ref = reference.sequence_log_prob(batch, targets).view(n_rows, -1)
            margin = cfg.dpo_beta * ((policy - ref)[:, 1:] - (policy - ref)[:, :1])
            margin = margin.masked_fill(~ok[:, 1:], float("-inf"))
            dpo = F.softplus(torch.logsumexp(margin, dim=1)).mean()  # −log σ(−log Σ_j exp(β(Δ_j − Δ_w)))
            value = dpo - cfg.sft_weight * policy[:, 0].mean() / targets.shape[1]
            return value * share if group.distributed else value
        return loss

    def batches(epoch: int) -> Iterator[Step]:
        rng = np.random.default_rng([cfg.seed, 3, epoch])
        order = rng.permutation(usable)
        half = max(1, cfg.batch_size // (1 + cfg.dpo_negatives))
        for start in range(0, len(order), half):
            rows = order[start : start + half]
            negatives = np.full((len(rows), cfg.dpo_negatives), -1, dtype=np.int64)
            for i, r in enumerate(rows):
                passed = preferences.items[r][preferences.rejectable[r]]
                pick = rng.choice(passed, size=min(cfg.dpo_negatives, len(passed)), replace=False)
                negatives[i, : len(pick)] = pick
            drop = rng.random() < cfg.user_drop_prob
            mine = group.shard(np.arange(len(rows)))
            share = group.share(len(mine), len(rows))
            rows, negatives = rows[mine], negatives[mine]
            chosen = preferences.items[rows, preferences.chosen[rows]]
            candidates = np.concatenate([chosen[:, None], negatives], 1)  # (B, 1+N)
            valid = torch.from_numpy(candidates >= 0)
            flat_rows = np.repeat(rows, candidates.shape[1])
            sids = torch.from_numpy(np.maximum(vrq.sids_of(candidates.ravel()), 0))
            user = _user_context(users, vrq, logq, flat_rows, model, drop)
            yield step(make_input(logq.bank, flat_rows, user), sids, valid, len(rows), share)
    return batches


def clone_reference(model: SidGenerator) -> SidGenerator:
    ref = copy.deepcopy(model)
    ref.eval()
    return ref
