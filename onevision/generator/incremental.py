"""Incremental decoding for beam search: the same decoder weights and arithmetic as
`SidGenerator.decode_step`, without the work that is not needed.

`decode_step` re-reads the whole prefix and re-projects the image memory for every beam row at every
level. Here the memory's cross-attention keys and values are projected once per query (each beam row
indexes its query's), and each step runs the decoder on the new positions only, attending over cached
self-attention keys and values of the prefix (exact: the decoder is causal, so a position's keys and values
never change once computed). Beams that survive a step carry their parent's cache (`reorder`).

The self-attention cache is position-major, (positions, rows, d): a new position attends over at most the
SID's depth of keys, so its scores are one broadcast product and a sum over the head width, and the softmax
runs over the (short) leading axis. Batched SDPA on (rows x heads) sequences of one query and two or three keys
is dominated by its per-sequence overhead (about 3x slower at 50 rows, and at 1,600).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from onevision.generator.model import SidGenerator
from onevision.generator.prepared import PerModel


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    n, t, d = x.shape
    return x.view(n, t, h, d // h).transpose(1, 2)  # (N, h, t, d_head)


def _merge(x: torch.Tensor) -> torch.Tensor:
    n, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(n, t, h * dh)


@dataclass(frozen=True)
class _Layer:
    """One decoder layer's weights as plain tensors: calling F.* on them skips nn.Module dispatch, which
    costs more than the arithmetic at these sizes."""

    norm: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # norm1..3 (weight, bias)
    self_in: tuple[torch.Tensor, torch.Tensor]
    self_out: tuple[torch.Tensor, torch.Tensor]
    cross_q: tuple[torch.Tensor, torch.Tensor]
    cross_out: tuple[torch.Tensor, torch.Tensor]
    ff1: tuple[torch.Tensor, torch.Tensor]
    ff2: tuple[torch.Tensor, torch.Tensor]
    activation: object
    eps: float


def _layer(layer: torch.nn.TransformerDecoderLayer, d: int) -> _Layer:
    sa, ca = layer.self_attn, layer.multihead_attn
    return _Layer(
        tuple((n.weight, n.bias) for n in (layer.norm1, layer.norm2, layer.norm3)),
        (sa.in_proj_weight, sa.in_proj_bias), (sa.out_proj.weight, sa.out_proj.bias),
        (ca.in_proj_weight[:d], ca.in_proj_bias[:d]), (ca.out_proj.weight, ca.out_proj.bias),
        (layer.linear1.weight, layer.linear1.bias), (layer.linear2.weight, layer.linear2.bias),
        layer.activation, layer.norm1.eps,
    )


# The decoder layers' weights as views of the model's parameters, gathered once per model (views follow in-place
# updates; a replaced parameter rebuilds them).
_layers = PerModel(lambda model: tuple(_layer(layer, model.config.d_model) for layer in model.decoder.layers))


class IncrementalDecoder:
    def __init__(self, model: SidGenerator, memory: torch.Tensor):
        """memory: (B, S, d), one row per query (`SidGenerator.encode`)."""
        self.model = model
        self.heads = model.config.heads
        self.d = d = model.config.d_model
        self.layers = _layers(model)
        self.cross = []  # each layer's cross-attention keys and values of the memory, (B, h, S, d_head)
        for layer in model.decoder.layers:
            ca = layer.multihead_attn
            k, v = F.linear(memory, ca.in_proj_weight[d:], ca.in_proj_bias[d:]).split(d, -1)
            self.cross.append((_heads(k, self.heads), _heads(v, self.heads)))
        self.cache: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.layers)
        self.cached = 0  # positions held in the cache
        self.bos = model.bos[:, 0] + model.level_embedding[:, 0]
        self.final_norm = (model.norm.weight, model.norm.bias, model.norm.eps)

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep the caches of `rows` (the surviving beams' parents), in that order."""
        self.cache = [None if c is None else (c[0][:, rows], c[1][:, rows]) for c in self.cache]

    def _inputs(self, prefix: torch.Tensor, start: int) -> torch.Tensor:
        """Decoder inputs of positions start..len(prefix): BOS, then each prefix token, plus level embeddings."""
        m = self.model
        if start == prefix.shape[1]:  # one new position (the usual step)
            if start == 0:
                return self.bos.expand(prefix.shape[0], -1)[:, None]
            return (F.embedding(prefix[:, -1], m.sid_embeddings[start - 1].weight) + m.level_embedding[:, start])[:, None]
        parts = []
        for pos in range(start, prefix.shape[1] + 1):
            if pos == 0:
                parts.append(self.bos.expand(prefix.shape[0], -1))
            else:
                parts.append(F.embedding(prefix[:, pos - 1], m.sid_embeddings[pos - 1].weight) + m.level_embedding[:, pos])
        return torch.stack(parts, 1)

    def _layout(self, query: torch.Tensor) -> tuple[int, torch.Tensor | None, torch.Tensor | None]:
        """How rows fold into their queries for cross-attention: (rows per query, None, None) when the rows
        come grouped by query, the same number each (always at batch 1), else (most rows of a query, query,
        slot of each row inside its query) for a padded grid."""
        b, n = self.cross[0][0].shape[0], query.shape[0]
        if n % b == 0 and (b == 1 or bool((query.view(b, n // b) == torch.arange(b)[:, None]).all())):
            return n // b, None, None
        counts = torch.bincount(query, minlength=b)
        order = torch.argsort(query, stable=True)
        slot = torch.empty_like(query)
        slot[order] = torch.arange(n) - (torch.cumsum(counts, 0) - counts)[query[order]]
        return int(counts.max()), query, slot

    def _cross_attention(self, q: torch.Tensor, layer: int, layout: tuple) -> torch.Tensor:
        """Cross-attention of rows q (N, t, d) over their query's memory: a query's rows are folded into one
        sequence (cross-attention has no mask, so each position's answer is unchanged), which reads each
        query's keys and values once instead of copying them to every beam row."""
        ck, cv = self.cross[layer]  # (B, h, S, d_head)
        b, (n, t, d) = ck.shape[0], q.shape
        rows, query, slot = layout
        if query is None:
            a = F.scaled_dot_product_attention(_heads(q.reshape(b, rows * t, d), self.heads), ck, cv)
            return _merge(a).view(n, t, d)
        grid = q.new_zeros(b, rows, t, d)
        grid[query, slot] = q
        a = _merge(F.scaled_dot_product_attention(_heads(grid.view(b, rows * t, d), self.heads), ck, cv))
        return a.view(b, rows, t, d)[query, slot]

    def _self_attention(self, q: torch.Tensor, layer: int, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Causal self-attention of the new positions q (N, n_new, d) over the cached positions and the new
        keys/values k, v (N, n_new, d); appends k, v to the layer's cache."""
        n, n_new, d = q.shape
        h, dh = self.heads, d // self.heads
        k, v = k.transpose(0, 1), v.transpose(0, 1)  # (n_new, N, d)
        if self.cache[layer] is not None:
            k = torch.cat([self.cache[layer][0], k])
            v = torch.cat([self.cache[layer][1], v])
        self.cache[layer] = (k, v)
        t = k.shape[0]
        if t == 1:  # the first position attends to itself alone: softmax of one score is exactly 1
            return v.transpose(0, 1)
        keys, values = k.view(t, n, h, dh), v.view(t, n, h, dh)
        out = []
        for j in range(n_new):  # one new position, except after a skipped one-token level
            seen = t - n_new + j + 1  # position j sees every position up to its own
            scores = (keys[:seen] * q[:, j].view(1, n, h, dh)).sum(-1) * dh ** -0.5  # (seen, N, h)
            p = torch.softmax(scores, 0)
            out.append((p.unsqueeze(-1) * values[:seen]).sum(0).view(n, d))
        return out[0][:, None] if n_new == 1 else torch.stack(out, 1)

    def step(self, prefix: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Logits of the next token for rows with `prefix` (N, t) of queries `query` (N,): (N, V_t), equal to
        `model.decode_step(memory[query], prefix)`. Positions not yet cached (usually one) are computed."""
        x = self._inputs(prefix, self.cached)  # (N, n_new, d)
        d = self.d
        layout = self._layout(query)
        for i, w in enumerate(self.layers):
            (n1w, n1b), (n2w, n2b), (n3w, n3b) = w.norm
            q, k, v = F.linear(F.layer_norm(x, (d,), n1w, n1b, w.eps), *w.self_in).split(d, -1)
            x = x + F.linear(self._self_attention(q, i, k, v), *w.self_out)
            q = F.linear(F.layer_norm(x, (d,), n2w, n2b, w.eps), *w.cross_q)
            x = x + F.linear(self._cross_attention(q, i, layout), *w.cross_out)
            x = x + F.linear(w.activation(F.linear(F.layer_norm(x, (d,), n3w, n3b, w.eps), *w.ff1)), *w.ff2)
        self.cached = prefix.shape[1] + 1
        nw, nb, eps = self.final_norm
        head = self.model.heads[prefix.shape[1]]
        return F.linear(F.layer_norm(x[:, -1], (d,), nw, nb, eps), head.weight, head.bias)
