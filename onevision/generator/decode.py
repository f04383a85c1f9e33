"""Trie-constrained, batched beam search with dynamic pruning.

All beams of all queries live in one flat batch of rows; each step runs the decoder once on the rows
that are still alive, masks invalid next tokens with the SID trie (one scatter, no loop per beam), adds
cumulative log-probabilities and keeps the best `width` continuations per query with one `topk`.

Dynamic pruning, both kinds:
- token pruning (`keep_tokens`): the encoder reads only the most important image tokens (prefill cost);
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
from onevision.generator.model import GeneratorInput, SidGenerator
from onevision.vrq.sid import SidTrie


@dataclass(frozen=True)
class PruningConfig:
    keep_tokens: int | None = None  # image tokens kept before the encoder (None = all)
    beam_margin: float = math.inf  # drop beams whose log-prob < best - margin
    confidence_mass: float = 1.0  # shrink width once the top beams hold this share of probability (< 1 enables)
    min_width: int = 1  # never shrink below this (the final width is also at least top_k)

    @property
    def enabled(self) -> bool:
        return self.keep_tokens is not None or math.isfinite(self.beam_margin) or self.confidence_mass < 1.0


# The served default, from bench/generator_vs_cascade.py on the default world: 37% fewer generator FLOPs
# than full beam search at no recall@10 loss (see README). Evaluation in the pipeline uses full beam search.
SERVING_PRUNING = PruningConfig(beam_margin=6.0, confidence_mass=0.99, min_width=10)


@dataclass
class DecodeResult:
    item_ids: np.ndarray  # int64 (B, k), -1 pads a short list
    sids: np.ndarray  # int64 (B, k, depth)
    scores: np.ndarray  # float32 (B, k): log-probability of the SID
    decoder_rows: int = 0  # beam rows the decoder processed (cost accounting)
    encoder_tokens: int = 0  # tokens the encoder read
    stats: dict = field(default_factory=dict)


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
    memory = model.encode(batch, pruning.keep_tokens)
    bias = model.level_bias(batch)
    decoder = IncrementalDecoder(model, memory)
    encoder_tokens = memory.shape[0] * memory.shape[1]
    depth = trie.depth
    # Alive rows: (query index, trie node, prefix tokens, score)
    query = torch.arange(b)
    node = torch.zeros(b, dtype=torch.long)
    prefix = torch.zeros(b, 0, dtype=torch.long)
    score = torch.zeros(b)
    decoder_rows = 0
    for level in range(depth):
        if trie.vocab_sizes[level] == 1:  # a one-token level (no collisions): log p = 0, skip the decoder
            logp = torch.zeros(len(query), 1)
        else:
            decoder_rows += len(query)
            logp = torch.log_softmax(decoder.step(prefix, query), -1)
        if bias is not None and level == model.config.attribute_level:  # the product of experts' user term
            logp = logp + bias[query]
        children = trie.next_nodes(level, node)  # (rows, V) next trie node per token, -1: invalid
        cand = (score[:, None] + logp).masked_fill(children < 0, -math.inf)
        width = beam_width if level < depth - 1 else max(top_k, 1)
        width = max(width, top_k)
        # Gather each query's candidates into one row of (rows_of_query × V) and take its top `width`.
        rows_per_query = torch.bincount(query, minlength=b)
        max_rows = int(rows_per_query.max())
        v = cand.shape[1]
        slot = torch.arange(len(query)) - torch.repeat_interleave(torch.cumsum(rows_per_query, 0) - rows_per_query, rows_per_query)
        grid = torch.full((b, max_rows, v), -math.inf)
        grid[query, slot] = cand
        grid = grid.view(b, max_rows * v)
        k = min(width, grid.shape[1])
        top_scores, top_index = grid.topk(k, dim=1)
        keep = torch.isfinite(top_scores)
        if math.isfinite(pruning.beam_margin):
            keep &= top_scores >= top_scores[:, :1] - pruning.beam_margin
        if pruning.confidence_mass < 1.0 and level < depth - 1:
            probs = torch.softmax(torch.where(keep, top_scores, torch.tensor(-math.inf)), dim=1)
            covered = torch.cumsum(probs, 1) - probs < pruning.confidence_mass  # smallest set reaching the mass
            keep &= covered | (torch.arange(k)[None, :] < max(pruning.min_width, 1))
        if level == depth - 1:
            keep &= torch.arange(k)[None, :] < top_k
        q_idx, j = torch.nonzero(keep, as_tuple=True)
        src_row_slot = top_index[q_idx, j] // v
        token = top_index[q_idx, j] % v
        # map (query, slot) back to the alive row
        row_of = torch.full((b, max_rows), -1, dtype=torch.long)
        row_of[query, slot] = torch.arange(len(query))
        src = row_of[q_idx, src_row_slot]
        node = children[src, token]
        decoder.reorder(src)
        prefix = torch.cat([prefix[src], token[:, None]], 1)
        score = top_scores[q_idx, j]
        query = q_idx
    # Final rows are sorted by query then score (topk order); lay them out as (B, top_k).
    out_items = np.full((b, top_k), -1, dtype=np.int64)
    out_sids = np.full((b, top_k, depth), -1, dtype=np.int64)
    out_scores = np.full((b, top_k), -np.inf, dtype=np.float32)
    counts = torch.bincount(query, minlength=b)
    slot = (torch.arange(len(query)) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)).numpy()
    qn = query.numpy()
    out_items[qn, slot] = trie.leaf_item[node.numpy()]
    out_sids[qn, slot] = prefix.numpy()
    out_scores[qn, slot] = score.numpy()
    return DecodeResult(out_items, out_sids, out_scores, decoder_rows, encoder_tokens)
