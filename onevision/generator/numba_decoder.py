"""The incremental decoder compiled with Numba, for small batches: the same weights and arithmetic as
`IncrementalDecoder`, without its per-operation cost.

At batch 1 the decoder runs a few hundred operations on arrays of 50 x 96 floats; in eager PyTorch each costs
several microseconds of dispatch, more than its arithmetic, and NumPy is little better (a reduction over such
an array costs 5 us). Here each decoder layer is one compiled function: layer norms, attention and softmax are
loops, and the matmuls go straight to BLAS. The weights are prepared once per model (transposed to row-major,
each layer norm's scale and shift folded into the linear layer it feeds, the attention scale folded into the
queries). Float32 throughout; results equal the torch decoder's to rounding (tests compare rankings). The
kernels compile on first use (a few seconds) and are cached on disk (`cache=True`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from numba import njit
from torch.nn import functional as F

from onevision.generator.model import GeneratorInput, SidGenerator
from onevision.generator.prepared import PerModel


@dataclass(frozen=True)
class _Linear:
    weight: np.ndarray  # (in, out), row-major: x @ weight
    bias: np.ndarray  # (out,)


def _linear(weight: torch.Tensor, bias: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor] | None = None,
            scale_out: torch.Tensor | None = None) -> _Linear:
    """x -> linear(layer_norm_affine(x)) as one linear layer of the normalised x: W' = diag(g) W^T,
    b' = beta W^T + b; `scale_out` multiplies output columns (the attention scale of the queries)."""
    w = weight.detach().double().t()
    b = bias.detach().double()
    if norm is not None:
        g, beta = (t.detach().double() for t in norm)
        b = b + beta @ w
        w = g[:, None] * w
    if scale_out is not None:
        w, b = w * scale_out[None, :], b * scale_out
    return _Linear(np.ascontiguousarray(w.float().numpy()), np.ascontiguousarray(b.float().numpy()))


_JIT = dict(cache=True, fastmath=True, nogil=True)


@njit(**_JIT)
def _normalise(x, eps):
    """Layer norm without its affine part (folded into the next linear layer)."""
    n, d = x.shape
    out = np.empty_like(x)
    for i in range(n):
        mean = np.float32(0.0)
        for c in range(d):
            mean += x[i, c]
        mean /= d
        var = np.float32(0.0)
        for c in range(d):
            v = x[i, c] - mean
            var += v * v
        r = np.float32(1.0) / np.sqrt(var / d + eps)
        for c in range(d):
            out[i, c] = (x[i, c] - mean) * r
    return out


@njit(**_JIT)
def _softmax_(scores, count):
    """scores[:count] <- their softmax, in place, from their maximum."""
    best = scores[0]
    for p in range(1, count):
        best = max(best, scores[p])
    total = np.float32(0.0)
    for p in range(count):
        scores[p] = np.exp(scores[p] - best)
        total += scores[p]
    for p in range(count):
        scores[p] /= total


@njit(**_JIT)
def _relu_(x):
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            if x[i, c] < 0:
                x[i, c] = 0


@njit(**_JIT)
def _affine(h, w, b):
    out = h @ w
    out += b
    return out


@njit(**_JIT)
def _self_attend(q, keys, values, count, heads):
    """Each row's new position over its first `count` cached positions: q (N, d) pre-scaled, keys/values
    (P, N, d)."""
    n, d = q.shape
    dh = d // heads
    out = np.zeros((n, d), np.float32)
    scores = np.empty(count, np.float32)
    for i in range(n):
        for h in range(heads):
            lo = h * dh
            for p in range(count):
                acc = np.float32(0.0)
                for e in range(dh):
                    acc += q[i, lo + e] * keys[p, i, lo + e]
                scores[p] = acc
            _softmax_(scores, count)
            for p in range(count):
                for e in range(dh):
                    out[i, lo + e] += scores[p] * values[p, i, lo + e]
    return out


@njit(**_JIT)
def _cross_attend(q, keys_t, values, query, heads):
    """Rows over their query's memory: q (N, d) pre-scaled, keys_t (B, heads, d_head, S), values (B, heads, S,
    d_head). Beam search keeps a query's rows together, so each run of rows is a few small matmuls per head."""
    n, d = q.shape
    dh = d // heads
    out = np.empty((n, d), np.float32)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and query[stop] == query[start]:
            stop += 1
        b = query[start]
        for h in range(heads):
            scores = np.ascontiguousarray(q[start:stop, h * dh:(h + 1) * dh]) @ keys_t[b, h]  # (rows, S)
            for i in range(stop - start):
                _softmax_(scores[i], scores.shape[1])
            out[start:stop, h * dh:(h + 1) * dh] = scores @ values[b, h]
        start = stop
    return out


@njit(**_JIT)
def _layer(x, pos, cache_k, cache_v, query, cross_k, cross_v, heads, eps,
           w_qkv, b_qkv, w_so, b_so, w_cq, b_cq, w_co, b_co, w_f1, b_f1, w_f2, b_f2):
    """One pre-norm decoder layer for the rows' new position `pos` (x: (N, d)); writes its keys/values into the
    caches (P, N, d) at `pos` and attends over positions 0..pos, then over each row's query memory."""
    n, d = x.shape
    qkv = _affine(_normalise(x, eps), w_qkv, b_qkv)
    for i in range(n):
        for c in range(d):
            cache_k[pos, i, c] = qkv[i, d + c]
            cache_v[pos, i, c] = qkv[i, 2 * d + c]
    q = np.ascontiguousarray(qkv[:, :d])
    x = x + _affine(_self_attend(q, cache_k, cache_v, pos + 1, heads), w_so, b_so)
    q = _affine(_normalise(x, eps), w_cq, b_cq)
    x = x + _affine(_cross_attend(q, cross_k, cross_v, query, heads), w_co, b_co)
    hidden = _affine(_normalise(x, eps), w_f1, b_f1)
    _relu_(hidden)
    return x + _affine(hidden, w_f2, b_f2)


@njit(**_JIT)
def _encoder_layer(x, seq, heads, eps, w_qkv, b_qkv, w_o, b_o, w_f1, b_f1, w_f2, b_f2):
    """One pre-norm encoder layer over sequences of `seq` tokens: x (B * seq, d)."""
    n, d = x.shape
    dh = d // heads
    qkv = _affine(_normalise(x, eps), w_qkv, b_qkv)
    att = np.zeros((n, d), np.float32)
    scores = np.empty(seq, np.float32)
    for start in range(0, n, seq):
        for i in range(start, start + seq):
            for h in range(heads):
                lo = h * dh
                for j in range(seq):
                    acc = np.float32(0.0)
                    for e in range(dh):
                        acc += qkv[i, lo + e] * qkv[start + j, d + lo + e]
                    scores[j] = acc
                _softmax_(scores, seq)
                for j in range(seq):
                    for e in range(dh):
                        att[i, lo + e] += scores[j] * qkv[start + j, 2 * d + lo + e]
    x = x + _affine(att, w_o, b_o)
    hidden = _affine(_normalise(x, eps), w_f1, b_f1)
    _relu_(hidden)
    return x + _affine(hidden, w_f2, b_f2)


@njit(**_JIT)
def _head(x, eps, w, b):
    return _affine(_normalise(x, eps), w, b)


@dataclass(frozen=True)
class _Layer:
    self_qkv: _Linear  # norm1 folded, queries pre-scaled by d_head^-1/2
    self_out: _Linear
    cross_q: _Linear  # norm2 folded, pre-scaled
    cross_kv: _Linear  # of the memory (not normalised: the memory is the encoder's output)
    cross_out: _Linear
    ff1: _Linear  # norm3 folded
    ff2: _Linear
    eps: float

    def weights(self) -> tuple[np.ndarray, ...]:
        return tuple(a for lin in (self.self_qkv, self.self_out, self.cross_q, self.cross_out, self.ff1, self.ff2)
                     for a in (lin.weight, lin.bias))


@dataclass(frozen=True)
class _Weights:
    layers: tuple[_Layer, ...]
    encoder: tuple[tuple[np.ndarray, ...], ...]  # per encoder layer: qkv (norm1 folded, queries scaled), out, ff1 (norm2 folded), ff2
    encoder_eps: tuple[float, ...]
    image_proj: _Linear  # patch tokens -> d
    token_bias: np.ndarray  # (positions, d): each position's embedding + the patch type embedding
    global_proj: _Linear  # global embedding -> d, its bias plus the global type embedding
    heads: tuple[_Linear, ...]  # final norm folded
    sid_embeddings: tuple[np.ndarray, ...]
    level_embedding: np.ndarray  # (depth, d)
    bos: np.ndarray  # (d,): BOS + level 0's embedding
    eps: float

    @cached_property
    def flat_layers(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], np.ndarray]:
        """Every decoder layer's weights and biases in `_Layer.weights` order, as two flat tuples, and their layer
        norms' eps (what the fused search reads; built once per prepared model)."""
        arrays = [a for layer in self.layers for a in layer.weights()]
        return tuple(arrays[0::2]), tuple(arrays[1::2]), np.asarray([layer.eps for layer in self.layers], np.float32)


class UnsupportedModel(ValueError):
    """The model uses a layer this decoder does not implement (callers fall back to the torch decoder)."""


def _prepare(model: SidGenerator) -> _Weights:
    d, h = model.config.d_model, model.config.heads
    scale = torch.cat([torch.full((d,), (d // h) ** -0.5, dtype=torch.float64), torch.ones(2 * d, dtype=torch.float64)])
    layers = []
    for layer in model.decoder.layers:
        if layer.activation is not F.relu or not layer.norm_first:
            raise UnsupportedModel("the compiled decoder implements pre-norm layers with ReLU")
        sa, ca = layer.self_attn, layer.multihead_attn
        norm = lambda n: (n.weight, n.bias)  # noqa: E731
        layers.append(_Layer(
            _linear(sa.in_proj_weight, sa.in_proj_bias, norm(layer.norm1), scale),
            _linear(sa.out_proj.weight, sa.out_proj.bias),
            _linear(ca.in_proj_weight[:d], ca.in_proj_bias[:d], norm(layer.norm2), scale[:d]),
            _linear(ca.in_proj_weight[d:], ca.in_proj_bias[d:]),
            _linear(ca.out_proj.weight, ca.out_proj.bias),
            _linear(layer.linear1.weight, layer.linear1.bias, norm(layer.norm3)),
            _linear(layer.linear2.weight, layer.linear2.bias),
            layer.norm1.eps,
        ))
    encoder = []
    for layer in model.encoder.layers:
        if layer.activation is not F.relu or not layer.norm_first:
            raise UnsupportedModel("the compiled decoder implements pre-norm layers with ReLU")
        sa = layer.self_attn
        parts = (_linear(sa.in_proj_weight, sa.in_proj_bias, (layer.norm1.weight, layer.norm1.bias), scale),
                 _linear(sa.out_proj.weight, sa.out_proj.bias),
                 _linear(layer.linear1.weight, layer.linear1.bias, (layer.norm2.weight, layer.norm2.bias)),
                 _linear(layer.linear2.weight, layer.linear2.bias))
        encoder.append(tuple(a for lin in parts for a in (lin.weight, lin.bias)))
    if model.encoder.norm is not None:
        raise UnsupportedModel("the compiled decoder implements an encoder without a final norm")
    final = (model.norm.weight, model.norm.bias)
    as_np = lambda t: np.ascontiguousarray(t.detach().float().numpy())  # noqa: E731
    image_proj = _linear(model.image_proj.weight, model.image_proj.bias)
    token_bias = model.position[0].detach() + model.type_embedding.weight[0].detach()
    global_proj = _linear(model.global_proj.weight, model.global_proj.bias + model.type_embedding.weight[1])
    return _Weights(
        tuple(layers), tuple(encoder), tuple(layer.norm1.eps for layer in model.encoder.layers),
        image_proj, as_np(token_bias), global_proj, tuple(_linear(head.weight, head.bias, final) for head in model.heads),
        tuple(as_np(e.weight) for e in model.sid_embeddings), as_np(model.level_embedding[0]),
        as_np(model.bos[0, 0] + model.level_embedding[0, 0]), model.norm.eps,
    )


# Copies, unlike the torch decoder's views: rebuilt when a parameter is updated in place, too.
prepared = PerModel(_prepare)


def encoder_inputs(model: SidGenerator, batch: GeneratorInput, keep_tokens: int | None,
                   w: _Weights | None = None) -> np.ndarray:
    """`model.encoder_inputs` (B, S, d) in NumPy for the served case (all image tokens, no user tokens); the other
    cases ask the model."""
    cfg = model.config
    b, t, c = batch.image_tokens.shape
    if (keep_tokens is not None and keep_tokens < t) or (
            cfg.user_feature_dim and cfg.user_tokens and batch.user_features is not None):
        return model.encoder_inputs(batch, keep_tokens).numpy()
    w = w or prepared(model)
    x = np.empty((b, t + 1, cfg.d_model), np.float32)
    tokens = np.ascontiguousarray(batch.image_tokens.numpy().reshape(b * t, c), np.float32)
    x[:, :t] = (_affine(tokens, w.image_proj.weight, w.image_proj.bias).reshape(b, t, -1) + w.token_bias[:t])
    x[:, t] = _affine(np.ascontiguousarray(batch.image_embedding.numpy(), np.float32), w.global_proj.weight,
                      w.global_proj.bias)
    return x


def encode(model: SidGenerator, inputs: np.ndarray, w: _Weights | None = None) -> np.ndarray:
    """`model.encoder` on its input sequence (B, S, d) (`SidGenerator.encoder_inputs`): the memory (B, S, d)."""
    w = w or prepared(model)
    b, s, d = inputs.shape
    x = np.ascontiguousarray(inputs.reshape(b * s, d), np.float32)
    for weights, eps in zip(w.encoder, w.encoder_eps):
        x = _encoder_layer(x, s, model.config.heads, np.float32(eps), *weights)
    return x.reshape(b, s, d)


class CompiledDecoder:
    """`IncrementalDecoder`'s interface on NumPy arrays: step(prefix (N, t) int64, query (N,) int64) -> logits
    (N, V_t) float32; reorder(rows)."""

    def __init__(self, model: SidGenerator, memory: np.ndarray, w: _Weights | None = None):
        """memory: (B, S, d) float32, one row per query (`SidGenerator.encode`)."""
        self.w = w or prepared(model)  # `w`: the caller's `prepared(model)`, checked once per search
        self.heads = model.config.heads
        self.d = d = model.config.d_model
        self.depth = model.config.depth
        b, s, _ = memory.shape
        flat = np.ascontiguousarray(memory.reshape(b * s, d), np.float32)
        h = self.heads
        self.cross = []  # per layer: keys (B, heads, d_head, S) and values (B, heads, S, d_head) of the memory
        for layer in self.w.layers:
            kv = _affine(flat, layer.cross_kv.weight, layer.cross_kv.bias).reshape(b, s, 2, h, d // h)
            self.cross.append((np.ascontiguousarray(kv[:, :, 0].transpose(0, 2, 3, 1)),
                               np.ascontiguousarray(kv[:, :, 1].transpose(0, 2, 1, 3))))
        self.cache: list[tuple[np.ndarray, np.ndarray]] | None = None  # per layer (positions, N, d)
        self.cached = 0

    def reorder(self, rows: np.ndarray) -> None:
        self.cache = [(k[:, rows], v[:, rows]) for k, v in self.cache]

    def _input(self, prefix: np.ndarray, pos: int) -> np.ndarray:
        w, n = self.w, prefix.shape[0]
        if pos == 0:
            return np.ascontiguousarray(np.broadcast_to(w.bos, (n, self.d)))
        return w.sid_embeddings[pos - 1][prefix[:, pos - 1]] + w.level_embedding[pos]

    def step(self, prefix: np.ndarray, query: np.ndarray) -> np.ndarray:
        n = prefix.shape[0]
        query = np.ascontiguousarray(query, np.int64)
        if self.cache is None:
            self.cache = [(np.zeros((self.depth, n, self.d), np.float32), np.zeros((self.depth, n, self.d), np.float32))
                          for _ in self.w.layers]
        for pos in range(self.cached, prefix.shape[1] + 1):  # one new position, except after a skipped level
            x = self._input(prefix, pos)
            for layer, (cache_k, cache_v), (cross_k, cross_v) in zip(self.w.layers, self.cache, self.cross):
                x = _layer(x, pos, cache_k, cache_v, query, cross_k, cross_v, self.heads, np.float32(layer.eps),
                           *layer.weights())
        self.cached = prefix.shape[1] + 1
        head = self.w.heads[prefix.shape[1]]
        return _head(x, np.float32(self.w.eps), head.weight, head.bias)


def compile_kernels() -> None:
    """Compile (or load from the disk cache) the kernels now, on arrays of the types a decode passes, so that a
    server's first request does not wait for the compiler."""
    d, heads, rows = 4, 2, 2
    f32 = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
    weights = (f32(d, 3 * d), f32(3 * d), f32(d, d), f32(d), f32(d, d), f32(d), f32(d, d), f32(d),
               f32(d, 2 * d), f32(2 * d), f32(2 * d, d), f32(d))
    x = _layer(f32(rows, d), 0, f32(2, rows, d), f32(2, rows, d), np.zeros(rows, np.int64),
               f32(1, heads, d // heads, 3), f32(1, heads, 3, d // heads), heads, np.float32(1e-5), *weights)
    _head(x, np.float32(1e-5), f32(d, 3), f32(3))
    _encoder_layer(f32(rows, d), 1, heads, np.float32(1e-5), *weights[:4], *weights[8:])
