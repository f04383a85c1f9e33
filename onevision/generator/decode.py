"""Trie-constrained, batched beam search with dynamic pruning.

All beams of all queries live in one flat batch of rows; each step runs the decoder once on the rows
that are still alive, masks invalid next tokens with the SID trie (one scatter, no loop per beam), adds
cumulative log-probabilities and keeps the best `width` continuations per query with one `topk`.

Dynamic pruning, both kinds:
- token pruning (`keep_tokens`): the encoder reads only the most important image tokens (prefill cost);
  `token_mass` < 1 chooses the count per batch instead: the fewest tokens holding that share of the encoder's
  pooling attention, for the query that needs the most;
- beam pruning: a beam whose log-prob falls more than `beam_margin` below its query's best is dropped, and
  the width shrinks at deeper levels when the first beams hold `confidence_mass` of the probability.
With `PruningConfig()` (no pruning) the search is exactly full beam search.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from onevision.generator.incremental import IncrementalDecoder
from onevision.generator.options import SERVING_BEAM_WIDTH, SERVING_PRUNING, PruningConfig
from onevision.generator.model import GeneratorInput, SidGenerator
from onevision.vrq.sid import SidTrie




@dataclass
class DecodeResult:
    item_ids: np.ndarray  # int64 (B, k), -1 pads a short list
    sids: np.ndarray  # int64 (B, k, depth)
    scores: np.ndarray  # float32 (B, k): log-probability of the SID
    decoder_rows: int = 0  # beam rows the decoder processed (cost accounting)
    encoder_tokens: int = 0  # tokens the encoder read
    stats: dict = field(default_factory=dict)


def tokens_to_keep(importance: torch.Tensor, pruning: PruningConfig) -> int | None:
    """How many image tokens the encoder reads: `keep_tokens`, or the fewest holding `token_mass` of every
    query's importance (B, T) (None = all)."""
    if pruning.token_mass >= 1.0:
        return pruning.keep_tokens
    ranked = importance.sort(dim=1, descending=True).values.cumsum(1)
    needed = int(((ranked < pruning.token_mass * ranked[:, -1:]).sum(1) + 1).clamp(max=importance.shape[1]).max())
    return needed if pruning.keep_tokens is None else min(needed, pruning.keep_tokens)


@torch.inference_mode()
def beam_search(
    model: SidGenerator,
    batch: GeneratorInput,
    trie: SidTrie,
    beam_width: int,
    top_k: int,
    pruning: PruningConfig = PruningConfig(),
) -> DecodeResult:
    b = len(batch)  # the model must be in eval mode (SidGenerator.load returns it so)
    memory = model.encode(batch, tokens_to_keep(batch.token_importance, pruning))
    bias = model.level_bias(batch)
    decoder = IncrementalDecoder(model, memory)
    encoder_tokens = memory.shape[0] * memory.shape[1]
    depth = trie.depth
    # Alive rows: (query index, trie node, prefix tokens, score), grouped by query; `counts` rows per query
    query = torch.arange(b)
    node = torch.zeros(b, dtype=torch.long)
    prefix = torch.zeros(b, 0, dtype=torch.long)
    score = torch.zeros(b)
    counts, even = torch.ones(b, dtype=torch.long), True  # even: every query has the same number of rows
    decoder_rows = 0
    floor_width = max(pruning.min_width, top_k, 1)
    # the deepest level the decoder runs at: after it no cache is read again, so none is reordered
    last_step = max((lvl for lvl in range(depth) if trie.vocab_sizes[lvl] > 1), default=-1)
    for level in range(depth):
        if trie.vocab_sizes[level] == 1:  # a one-token level (no collisions): log p = 0, skip the decoder
            logp = torch.zeros(len(query), 1)
        else:
            decoder_rows += len(query)
            logp = torch.log_softmax(decoder.step(prefix, query), -1)
        if bias is not None and level == model.config.attribute_level:  # the product of experts' user term
            logp = logp + bias.index_select(0, query)
        cand = (score[:, None] + logp) + trie.penalty(level, node)  # invalid next tokens: -inf
        width = max(beam_width if level < depth - 1 else top_k, top_k, 1)
        # Gather each query's candidates into one row of (rows_of_query × V) and take its top `width`.
        v = cand.shape[1]
        first = torch.cumsum(counts, 0) - counts  # (b,) first row of each query
        if even:  # no scatter needed
            max_rows = len(query) // b
            grid = cand.view(b, max_rows * v)
        else:
            slot = torch.arange(len(query)) - first[query]
            max_rows = int(counts.max())
            grid = torch.full((b, max_rows, v), -math.inf)
            grid[query, slot] = cand
            grid = grid.view(b, max_rows * v)
        k = min(width, grid.shape[1])
        top_scores, top_index = grid.topk(k, dim=1)
        keep = top_scores > -math.inf
        if level == depth - 1:  # the list a user sees: the top_k valid SIDs, never pruned shorter
            if k > top_k:
                keep[:, top_k:] = False
        elif pruning.enabled:
            # Pruning never keeps fewer than top_k (or min_width) beams: every surviving beam has at least one
            # valid leaf below it, so the final list is full whenever the catalogue allows.
            floor = torch.arange(k)[None, :] < floor_width
            if math.isfinite(pruning.beam_margin):
                keep &= (top_scores >= top_scores[:, :1] - pruning.beam_margin) | floor
            if pruning.confidence_mass < 1.0:
                probs = torch.softmax(torch.where(keep, top_scores, torch.tensor(-math.inf)), dim=1)
                covered = torch.cumsum(probs, 1) - probs < pruning.confidence_mass  # smallest set reaching the mass
                keep &= covered | floor
        counts = keep.sum(1)
        if bool(keep.all()):  # nothing dropped: survivors are the grid in row-major order
            q_idx = torch.arange(b).repeat_interleave(k) if b > 1 else torch.zeros(k, dtype=torch.long)
            flat, chosen, even = top_index.view(-1), top_scores.view(-1), True
        else:
            q_idx, j = torch.nonzero(keep, as_tuple=True)
            flat, chosen = top_index[q_idx, j], top_scores[q_idx, j]
            even = b == 1 or bool((counts == counts[0]).all())
        token = flat % v
        src = first.index_select(0, q_idx) + flat // v  # the alive row each survivor extends
        node = trie.child(level, node.index_select(0, src), token)
        if level < last_step:
            decoder.reorder(src)
        prefix = torch.cat([prefix.index_select(0, src), token[:, None]], 1)
        score = chosen
        query = q_idx
    # Final rows are sorted by query then score (topk order); lay them out as (B, top_k).
    out_items = np.full((b, top_k), -1, dtype=np.int64)
    out_sids = np.full((b, top_k, depth), -1, dtype=np.int64)
    out_scores = np.full((b, top_k), -np.inf, dtype=np.float32)
    slot = (torch.arange(len(query)) - torch.searchsorted(query, torch.arange(b))[query]).numpy()
    qn = query.numpy()
    out_items[qn, slot] = trie.leaf_item[node.numpy()]
    out_sids[qn, slot] = prefix.numpy()
    out_scores[qn, slot] = score.numpy()
    return DecodeResult(out_items, out_sids, out_scores, decoder_rows, encoder_tokens)
