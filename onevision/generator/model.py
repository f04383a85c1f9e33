"""The SID generator: an encoder-decoder transformer that reads image tokens (and optionally user tokens)
and emits an item's semantic ID token by token.

Encoder input: projected image patch tokens (+ the global image embedding as a token) and, when a user
is given, three user tokens (profile features, hashed user id, mean SID embedding of recent history).
Decoder: one embedding table and one output head per SID level; at most L + 1 steps, so the decoder
simply re-reads its short prefix each step.

Personalisation acts where preferences do. When the SID has an attribute level (VRQ codes it by brand x
price band), a user x attribute term b(u, sid) scores the SID's attribute code: a small linear scorer of the
user's observable affinities (click/order log-lifts, `UserFeatureTable.affinity`) for the code's brand and
price band. It has a handful of weights shared by all users and codes, so it generalises from a few clicks
per user instead of memorising per-user noise, which is what free user tokens did (personalisation lift
1.00 with tokens alone). The same kind of term scores level 0 by the user's affinities for the code's category
(level-0 codes are partitioned by category): a user's categories say what they photograph, as the cascade's
ranker reads them.

The model is a product of experts: p(sid | x, u) ∝ p_θ(sid | x, u) · exp(b(u, sid)). `sequence_log_prob`
and beam search rank by its unnormalised log-score log p_θ + b, which orders SIDs exactly as the
normalised distribution does (the normaliser is one constant per query), so a preferred code lifts every
item that carries it, across prefixes; inside the level's softmax it could only reorder items within one
prefix. Teacher-forced training (`forward`, stage 2) puts the term inside the attribute level's softmax,
which approximates the normaliser by the target's own prefix; DPO (stage 3) uses the exact log-score,
since the normaliser cancels between candidates of one query.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from onevision.checkpoint import load_module, save_module

WEIGHTS_FILE = "generator.pt"
CONFIG_FILE = "config.json"
USER_TERM_SCORERS: tuple[str, ...] = ("affinity_scorer.", "category_scorer.")  # parameter prefixes of the user terms


@dataclass(frozen=True)
class GeneratorConfig:
    token_dim: int = 128  # image patch token width (encoder's last stage)
    embed_dim: int = 128  # image embedding width
    user_feature_dim: int = 0  # 0 = no user tower
    vocab_sizes: tuple[int, ...] = (256, 256, 256, 4)
    d_model: int = 128
    heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    ff_mult: int = 2
    dropout: float = 0.1
    user_id_buckets: int = 4096
    history_len: int = 8
    user_tokens: bool = True  # profile / hashed id / history tokens in the encoder (with user_feature_dim)
    attribute_level: int | None = None  # SID level coded by item attributes (VRQ attribute_level)
    affinity_features: int = 0  # per-code user x attribute features at that level (0 = no affinity scorer)
    category_features: int = 0  # per-code user x category features at level 0 (0 = no category scorer)

    @property
    def depth(self) -> int:
        return len(self.vocab_sizes)


@dataclass
class GeneratorInput:
    """A batch of prepared inputs. User fields are None for the non-personalised path."""

    image_tokens: torch.Tensor  # (B, T, C)
    image_embedding: torch.Tensor  # (B, D)
    token_importance: torch.Tensor  # (B, T): used by dynamic token pruning
    user_features: torch.Tensor | None = None  # (B, F)
    user_ids: torch.Tensor | None = None  # (B,) int64, -1 = unknown
    history_sids: torch.Tensor | None = None  # (B, H, depth) int64, -1 = padding
    attribute_affinity: torch.Tensor | None = None  # (B, V_attr, A): user x attribute features per code
    category_affinity: torch.Tensor | None = None  # (B, V_0, C): user x category features per level-0 code

    def __len__(self) -> int:
        return self.image_tokens.shape[0]

    def select(self, index: torch.Tensor) -> "GeneratorInput":
        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[index]

        return GeneratorInput(
            self.image_tokens[index], self.image_embedding[index], self.token_importance[index],
            pick(self.user_features), pick(self.user_ids), pick(self.history_sids), pick(self.attribute_affinity),
            pick(self.category_affinity),
        )


class SidGenerator(nn.Module):
    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.image_proj = nn.Linear(config.token_dim, d)
        self.global_proj = nn.Linear(config.embed_dim, d)
        self.type_embedding = nn.Embedding(5, d)  # patch, global, user profile, user id, history
        self.position = nn.Parameter(torch.zeros(1, 64, d))
        if config.user_feature_dim:
            self.user_proj = nn.Sequential(nn.Linear(config.user_feature_dim, d), nn.GELU(), nn.Linear(d, d))
            self.user_id_embedding = nn.Embedding(config.user_id_buckets + 1, d)  # last row: unknown user
        self.sid_embeddings = nn.ModuleList([nn.Embedding(v + 1, d) for v in config.vocab_sizes])  # +1: padding
        self.bos = nn.Parameter(torch.zeros(1, 1, d))
        self.level_embedding = nn.Parameter(torch.zeros(1, config.depth, d))
        layer = lambda: dict(d_model=d, nhead=config.heads, dim_feedforward=d * config.ff_mult,  # noqa: E731
                             dropout=config.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer()), config.encoder_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer()), config.decoder_layers)
        self.heads = nn.ModuleList([nn.Linear(d, v) for v in config.vocab_sizes])
        self.norm = nn.LayerNorm(d)
        if config.affinity_features:
            if config.attribute_level is None or not 0 <= config.attribute_level < config.depth:
                raise ValueError(f"affinity_features needs an attribute_level in [0, {config.depth}), got {config.attribute_level}")
            self.affinity_scorer = nn.Linear(config.affinity_features, 1)
            nn.init.zeros_(self.affinity_scorer.weight)  # starts as the model it grows from
            nn.init.zeros_(self.affinity_scorer.bias)
        if config.category_features:
            if config.affinity_features and config.attribute_level == 0:
                raise ValueError("the category term scores level 0, which the attribute term already scores")
            self.category_scorer = nn.Linear(config.category_features, 1)
            nn.init.zeros_(self.category_scorer.weight)
            nn.init.zeros_(self.category_scorer.bias)
        nn.init.normal_(self.position, std=0.02)
        nn.init.normal_(self.level_embedding, std=0.02)

    # ---- encoder side -------------------------------------------------------------------------
    def sid_sum_embedding(self, sids: torch.Tensor) -> torch.Tensor:
        """Sum of per-level embeddings of full SIDs (…, depth); -1 rows give zeros."""
        out = 0
        for level, emb in enumerate(self.sid_embeddings):
            tok = sids[..., level]
            out = out + emb(torch.where(tok < 0, torch.full_like(tok, emb.num_embeddings - 1), tok))
        return out * (sids[..., :1] >= 0)

    def encode(self, batch: GeneratorInput, keep_tokens: int | None = None) -> torch.Tensor:
        """Memory (B, S, d). keep_tokens < T drops the least important image tokens (dynamic token pruning)."""
        return self.encoder(self.encoder_inputs(batch, keep_tokens))

    def encoder_inputs(self, batch: GeneratorInput, keep_tokens: int | None = None) -> torch.Tensor:
        """The encoder's input sequence (B, S, d): projected image tokens, the global embedding, user tokens."""
        tokens = batch.image_tokens
        b, t, _ = tokens.shape
        pos = self.position[:, :t].expand(b, -1, -1)
        if keep_tokens is not None and keep_tokens < t:
            idx = batch.token_importance.topk(keep_tokens, dim=1).indices.sort(dim=1).values
            tokens = tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[-1]))
            pos = pos.gather(1, idx[..., None].expand(-1, -1, pos.shape[-1]))
        parts = [self.image_proj(tokens) + pos + self.type_embedding.weight[0],
                 (self.global_proj(batch.image_embedding) + self.type_embedding.weight[1])[:, None]]
        if self.config.user_feature_dim and self.config.user_tokens and batch.user_features is not None:
            uid = batch.user_ids
            bucket = torch.where(uid < 0, torch.full_like(uid, self.config.user_id_buckets), uid % self.config.user_id_buckets)
            parts.append((self.user_proj(batch.user_features) + self.type_embedding.weight[2])[:, None])
            parts.append((self.user_id_embedding(bucket) + self.type_embedding.weight[3])[:, None])
            hist = batch.history_sids
            n = (hist[..., 0] >= 0).sum(1, keepdim=True).clamp_min(1)
            parts.append((self.sid_sum_embedding(hist).sum(1) / n + self.type_embedding.weight[4])[:, None])
        return torch.cat(parts, 1)

    def level_biases(self, batch: GeneratorInput) -> list[torch.Tensor | None]:
        """The user terms per SID level: (B, V_l) where the level has one, else None: the user x category term
        at level 0 (each level-0 code lies in one category) and the user x attribute term at the attribute level."""
        out: list[torch.Tensor | None] = [None] * self.config.depth
        if self.config.category_features and batch.category_affinity is not None:
            out[0] = self.category_scorer(batch.category_affinity).squeeze(-1)
        if self.config.affinity_features and batch.attribute_affinity is not None:
            out[self.config.attribute_level] = self.affinity_scorer(batch.attribute_affinity).squeeze(-1)
        return out

    # ---- decoder side -------------------------------------------------------------------------
    def decoder_inputs(self, prefix: torch.Tensor) -> torch.Tensor:
        """prefix (N, t) SID tokens → decoder inputs (N, t + 1, d): BOS then each token."""
        embs = [self.bos.expand(prefix.shape[0], -1, -1)]
        for level in range(prefix.shape[1]):
            embs.append(self.sid_embeddings[level](prefix[:, level])[:, None])
        x = torch.cat(embs, 1)
        return x + self.level_embedding[:, : x.shape[1]]

    def decode_step(self, memory: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits of p_θ's next token (level = prefix length): (N, V_level); the user x attribute term is
        the caller's to add (see the module docstring)."""
        x = self.decoder_inputs(prefix)
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        h = self.decoder(x, memory, tgt_mask=mask, tgt_is_causal=True)
        return self.heads[prefix.shape[1]](self.norm(h[:, -1]))

    def forward(self, batch: GeneratorInput, sids: torch.Tensor, keep_tokens: int | None = None) -> list[torch.Tensor]:
        """Teacher forcing: logits per level [(B, V_l)] for target SIDs (B, depth), with the user x attribute
        term inside the attribute level's logits (the training approximation of the product of experts)."""
        memory = self.encode(batch, keep_tokens)
        x = self.decoder_inputs(sids[:, :-1])
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        h = self.norm(self.decoder(x, memory, tgt_mask=mask, tgt_is_causal=True))
        logits = [head(h[:, level]) for level, head in enumerate(self.heads)]
        for level, bias in enumerate(self.level_biases(batch)):
            if bias is not None:
                logits[level] = logits[level] + bias
        return logits

    def sequence_log_prob(self, batch: GeneratorInput, sids: torch.Tensor) -> torch.Tensor:
        """The product of experts' log-score of full SIDs: Σ_l log p_θ(sid_l | prefix) + b(u, sid), (B,).
        Beam search ranks by exactly this."""
        memory = self.encode(batch)
        x = self.decoder_inputs(sids[:, :-1])
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        h = self.norm(self.decoder(x, memory, tgt_mask=mask, tgt_is_causal=True))
        score = sum(torch.log_softmax(head(h[:, i]), -1).gather(1, sids[:, i : i + 1]).squeeze(1)
                    for i, head in enumerate(self.heads))
        for level, bias in enumerate(self.level_biases(batch)):
            if bias is not None:
                score = score + bias.gather(1, sids[:, level : level + 1]).squeeze(1)
        return score

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        save_module(self, self.config, directory, WEIGHTS_FILE, CONFIG_FILE)

    @classmethod
    def load(cls, directory: Path) -> SidGenerator:
        return load_module(cls, GeneratorConfig, directory, WEIGHTS_FILE, CONFIG_FILE, "generator")
