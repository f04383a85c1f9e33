"""Multi-view metric-learning losses: supervised InfoNCE and circle loss over in-batch labels."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def _pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def multi_positive_info_nce(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """SupCon-style InfoNCE: every other image of the same item is a positive."""
    pos, _ = _pair_masks(labels)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))
    log_prob = F.log_softmax(logits, dim=1)
    n_pos = pos.sum(1)
    has_pos = n_pos > 0
    loss = -(log_prob.masked_fill(~pos, 0.0).sum(1)[has_pos] / n_pos[has_pos])
    return loss.mean()


def circle_loss(z: torch.Tensor, labels: torch.Tensor, margin: float = 0.25, gamma: float = 64.0) -> torch.Tensor:
    """Circle loss (Sun et al., 2020) on cosine similarities of L2-normalised embeddings."""
    pos, neg = _pair_masks(labels)
    sim = z @ z.T
    alpha_p = torch.clamp_min(1 + margin - sim.detach(), 0)
    alpha_n = torch.clamp_min(sim.detach() + margin, 0)
    logit_p = -gamma * alpha_p * (sim - (1 - margin))
    logit_n = gamma * alpha_n * (sim - margin)
    lse_p = torch.logsumexp(logit_p.masked_fill(~pos, float("-inf")), dim=1)
    lse_n = torch.logsumexp(logit_n.masked_fill(~neg, float("-inf")), dim=1)
    valid = pos.any(1) & neg.any(1)
    return F.softplus(lse_p + lse_n)[valid].mean()
