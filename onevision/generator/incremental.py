"""Incremental decoding for beam search: the same decoder weights and arithmetic as
`SidGenerator.decode_step`, without the work that is not needed.

`decode_step` re-reads the whole prefix and re-projects the image memory for every beam row at every
level. Here the memory's cross-attention keys and values are projected once per query (each beam row
indexes its query's), and each step runs the decoder on the new positions only, attending over cached
self-attention keys and values of the prefix (exact: the decoder is causal, so a position's keys and values
never change once computed). Beams that survive a step carry their parent's cache (`reorder`).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from onevision.generator.model import SidGenerator


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    n, t, d = x.shape
    return x.view(n, t, h, d // h).transpose(1, 2)  # (N, h, t, d_head)


def _merge(x: torch.Tensor) -> torch.Tensor:
    n, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(n, t, h * dh)


class IncrementalDecoder:
    def __init__(self, model: SidGenerator, memory: torch.Tensor):
        """memory: (B, S, d), one row per query (`SidGenerator.encode`)."""
        self.model = model
        self.heads = model.config.heads
        d = model.config.d_model
        self.cross: list[tuple[torch.Tensor, torch.Tensor]] = []
        for layer in model.decoder.layers:
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k = F.linear(memory, w[d : 2 * d], b[d : 2 * d])
            v = F.linear(memory, w[2 * d :], b[2 * d :])
            self.cross.append((_heads(k, self.heads), _heads(v, self.heads)))
        self.cache: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.cross)
        self.cached = 0  # positions held in the cache

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep the caches of `rows` (the surviving beams' parents), in that order."""
        self.cache = [None if c is None else (c[0][rows], c[1][rows]) for c in self.cache]

    def _inputs(self, prefix: torch.Tensor, start: int) -> torch.Tensor:
        """Decoder inputs of positions start..len(prefix): BOS, then each prefix token, plus level embeddings."""
        m = self.model
        parts = []
        for pos in range(start, prefix.shape[1] + 1):
            tok = m.bos[:, 0].expand(prefix.shape[0], -1) if pos == 0 else m.sid_embeddings[pos - 1](prefix[:, pos - 1])
            parts.append(tok + m.level_embedding[:, pos])
        return torch.stack(parts, 1)

    def step(self, prefix: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Logits of the next token for rows with `prefix` (N, t) of queries `query` (N,): (N, V_t), equal to
        `model.decode_step(memory[query], prefix)`. Positions not yet cached (usually one) are computed."""
        m = self.model
        x = self._inputs(prefix, self.cached)  # (N, n_new, d)
        n_new, total = x.shape[1], prefix.shape[1] + 1
        # new position i (absolute cached + i) sees every absolute position <= its own
        causal = torch.ones(n_new, total, dtype=torch.bool).tril(self.cached)
        d = m.config.d_model
        for i, layer in enumerate(m.decoder.layers):
            sa = layer.self_attn
            q, k, v = F.linear(layer.norm1(x), sa.in_proj_weight, sa.in_proj_bias).split(d, -1)
            k, v = _heads(k, self.heads), _heads(v, self.heads)
            if self.cache[i] is not None:
                k = torch.cat([self.cache[i][0], k], 2)
                v = torch.cat([self.cache[i][1], v], 2)
            self.cache[i] = (k, v)
            a = F.scaled_dot_product_attention(_heads(q, self.heads), k, v, attn_mask=causal)
            x = x + sa.out_proj(_merge(a))
            ca = layer.multihead_attn
            q = F.linear(layer.norm2(x), ca.in_proj_weight[:d], ca.in_proj_bias[:d])
            ck, cv = self.cross[i]
            a = F.scaled_dot_product_attention(_heads(q, self.heads), ck[query], cv[query])
            x = x + ca.out_proj(_merge(a))
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        self.cached = total
        return m.heads[prefix.shape[1]](m.norm(x[:, -1]))
