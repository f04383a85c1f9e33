"""Training examples for the three generator stages, built from the world's observable tables only."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from onevision.generator.model import GeneratorInput
from onevision.featurestore.source import UserFeatureSource
from onevision.vision.augment import augment
from onevision.vision.encoder import ImageEncoder, to_pixels
from onevision.vision.images import decode_images
from onevision.vrq.fit import VRQArtifact
from onevision.world.io import World


@dataclass
class ImageBank:
    tokens: torch.Tensor  # (N, T, C)
    embedding: torch.Tensor  # (N, D)
    importance: torch.Tensor  # (N, T)

    def __len__(self) -> int:
        return len(self.tokens)


@torch.inference_mode()
def encode_bank(encoder: ImageEncoder, pixels: torch.Tensor, batch_size: int = 256) -> ImageBank:
    """Patch tokens, embedding and token importance (the encoder's pooling attention) of images.
    The encoder must be in eval mode (loaded models are); switching modes here would cost every request."""
    toks, embs, imps = [], [], []
    for start in range(0, len(pixels), batch_size):
        t = encoder.tokens(pixels[start : start + batch_size])
        toks.append(t)
        embs.append(encoder.embed_tokens(t))
        imps.append(token_importance(encoder, t))
    return ImageBank(torch.cat(toks), torch.cat(embs), torch.cat(imps))


def token_importance(encoder: ImageEncoder, tokens: torch.Tensor) -> torch.Tensor:
    return torch.softmax(tokens @ encoder.pool_query / tokens.shape[-1] ** 0.5, dim=1)


# The user x attribute features per code of the attribute level: (signal, attribute) log-lifts.
AFFINITY_FEATURES: tuple[tuple[str, str], ...] = (
    ("click", "brand"), ("click", "price_band"), ("order", "brand"), ("order", "price_band"),
    ("exposure", "brand"), ("exposure", "price_band"),
)


def attribute_affinity(users: UserFeatureSource, vrq: VRQArtifact, user_ids: np.ndarray,
                       exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
    """float32 (B, V_attr, len(AFFINITY_FEATURES)): each user's observable affinity for every code of the
    attribute level (0 for unknown users and unused codes)."""
    codes = vrq.attributes
    if codes is None:
        raise ValueError("the VRQ artifact has no attribute level, so there is nothing to score affinities on")
    values = {"brand": codes.brand, "price_band": codes.price_band}
    used = codes.brand >= 0
    out = []
    for signal, attr in AFFINITY_FEATURES:
        v = np.broadcast_to(np.maximum(values[attr], 0), (len(user_ids), len(used)))
        out.append(users.affinity(attr, user_ids, v, signal=signal, exclude_query_ids=exclude_query_ids) * used)
    return np.stack(out, -1).astype(np.float32)


# The user x category features per level-0 code: click / order / exposure log-lifts of the code's category and
# whether it is the category the user declared (the cascade's ranker reads the same).
CATEGORY_FEATURES: tuple[str, ...] = ("click", "order", "exposure", "declared")


def category_affinity(users: UserFeatureSource, vrq: VRQArtifact, user_ids: np.ndarray,
                      exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
    """float32 (B, V_0, len(CATEGORY_FEATURES)): each user's observable affinity for the category of every level-0
    code (0 for unknown users and codes of no category)."""
    categories = vrq.code_categories()
    if categories is None:
        raise ValueError("the VRQ artifact's level 0 is not partitioned by category, so there is no category to score")
    used = categories >= 0
    values = np.broadcast_to(np.maximum(categories, 0), (len(user_ids), len(categories)))
    out = [users.affinity("category", user_ids, values, signal=signal, exclude_query_ids=exclude_query_ids)
           for signal in CATEGORY_FEATURES[:-1]]
    declared = users.profile(user_ids, exclude_query_ids=exclude_query_ids)[0]
    out.append(values == np.asarray(declared)[:, None])  # declared is -1 for unknown users
    known = users.known(user_ids)
    return (np.stack(out, -1) * (used[None, :, None] & known[:, None, None])).astype(np.float32)


@dataclass
class UserContext:
    """User inputs for a batch: profile features, ids, history SIDs and per-code attribute affinities
    (leave-current-query-out when `exclude_query_ids` is given)."""

    features: torch.Tensor
    user_ids: torch.Tensor
    history_sids: torch.Tensor
    attribute_affinity: torch.Tensor | None = None
    category_affinity: torch.Tensor | None = None

    @classmethod
    def build(cls, users: UserFeatureSource, vrq: VRQArtifact, user_ids: np.ndarray, history_len: int,
              exclude_query_ids: np.ndarray | None = None, with_affinity: bool = False,
              with_category: bool = False) -> "UserContext":
        user_ids = np.asarray(user_ids, dtype=np.int64)
        known = users.known(user_ids)
        ids = np.where(known, user_ids, -1)
        feats = users.features(ids, exclude_query_ids=exclude_query_ids)
        hist = users.history(ids, history_len, exclude_query_ids=exclude_query_ids)
        aff = torch.from_numpy(attribute_affinity(users, vrq, ids, exclude_query_ids)) if with_affinity else None
        cat = torch.from_numpy(category_affinity(users, vrq, ids, exclude_query_ids)) if with_category else None
        return cls(torch.from_numpy(feats.astype(np.float32)), torch.from_numpy(ids),
                   torch.from_numpy(vrq.sids_of(hist)), aff, cat)


def make_input(bank: ImageBank, rows: np.ndarray | torch.Tensor, user: UserContext | None = None) -> GeneratorInput:
    rows = torch.as_tensor(rows)
    return GeneratorInput(
        bank.tokens[rows], bank.embedding[rows], bank.importance[rows],
        None if user is None else user.features, None if user is None else user.user_ids,
        None if user is None else user.history_sids, None if user is None else user.attribute_affinity,
        None if user is None else user.category_affinity,
    )


@dataclass
class VisualExamples:
    """Stage 1: every shop view (plus photo-like augmented copies) and train user photo → its item's SID."""

    bank: ImageBank
    sids: torch.Tensor  # (N, depth)


def visual_examples(world: World, encoder: ImageEncoder, vrq: VRQArtifact, augmented_copies: int = 1, seed: int = 0,
                    max_examples: int | None = None) -> VisualExamples:
    """Every shop view, `augmented_copies` augmented copies of each and every train photo, with their SIDs. Above
    `max_examples` (a large catalogue: what the stage's step budget can read), a seeded sample of them. Above
    `WHOLE_DECODE_LIMIT` examples they are decoded and encoded a chunk at a time."""
    views = world.item_views
    train_q = world.queries_of("train")
    total = len(views) * (1 + augmented_copies) + len(train_q)
    if max_examples is not None and total > max_examples:
        pick = np.sort(np.random.default_rng([seed, 7]).choice(total, size=max_examples, replace=False))
        return _streamed_visual_examples(views, train_q, encoder, vrq, augmented_copies, seed, pick)
    if total > WHOLE_DECODE_LIMIT:
        return _streamed_visual_examples(views, train_q, encoder, vrq, augmented_copies, seed, np.arange(total))
    view_px = to_pixels(decode_images(views["image"].tolist()))
    gen = torch.Generator().manual_seed(seed)
    pixels = [view_px] + [augment(view_px, gen) for _ in range(augmented_copies)]
    items = [views["item_id"].to_numpy(np.int64)] * (1 + augmented_copies)
    if len(train_q):
        pixels.append(to_pixels(decode_images(train_q["image"].tolist())))
        items.append(train_q["target_item_id"].to_numpy(np.int64))
    bank = encode_bank(encoder, torch.cat(pixels))
    return VisualExamples(bank, torch.from_numpy(vrq.sids_of(np.concatenate(items))))


# Up to this many stage-1 examples the bank is built from one decoded tensor of every image (2.4 GB of float
# pixels); above, a chunk at a time (other augmentation draws, the same kind of bank).
WHOLE_DECODE_LIMIT = 50_000
SAMPLE_CHUNK = 2048  # images decoded at once on the streamed path


def _streamed_visual_examples(views, train_q, encoder: ImageEncoder, vrq: VRQArtifact, augmented_copies: int,
                              seed: int, pick: np.ndarray) -> VisualExamples:
    """The examples `pick` (sorted indices into the (view, copy) examples, then the photos), decoded, augmented and
    encoded a chunk at a time."""
    n_views = len(views)
    blobs = np.concatenate([views["image"].to_numpy(object), train_q["image"].to_numpy(object)])
    items = np.concatenate([views["item_id"].to_numpy(np.int64), train_q["target_item_id"].to_numpy(np.int64)])
    max_examples = len(pick)
    # example e < n_views * (1 + copies): view e % n_views, copy e // n_views (0 = the view itself); then photos
    is_view = pick < n_views * (1 + augmented_copies)
    source = np.where(is_view, pick % n_views, n_views + pick - n_views * (1 + augmented_copies))
    copy = np.where(is_view, pick // n_views, 0)
    gen = torch.Generator().manual_seed(seed)
    bank: ImageBank | None = None
    for start in range(0, max_examples, SAMPLE_CHUNK):
        src, cp = source[start : start + SAMPLE_CHUNK], copy[start : start + SAMPLE_CHUNK]
        px = to_pixels(decode_images(blobs[src].tolist()))
        if (cp > 0).any():
            px[cp > 0] = augment(px[cp > 0], gen)
        part = encode_bank(encoder, px)
        if bank is None:  # filled in place: concatenating the chunks would hold the bank twice
            bank = ImageBank(*(torch.empty((max_examples, *t.shape[1:]), dtype=t.dtype)
                               for t in (part.tokens, part.embedding, part.importance)))
        stop = start + len(src)
        bank.tokens[start:stop], bank.embedding[start:stop], bank.importance[start:stop] = (
            part.tokens, part.embedding, part.importance)
    return VisualExamples(bank, torch.from_numpy(vrq.sids_of(items[source])))


@dataclass
class QueryLog:
    """Train-split queries with their photos encoded, and the logged slates with labels."""

    bank: ImageBank
    query_ids: np.ndarray  # (Q,)
    user_ids: np.ndarray  # (Q,)
    slate_items: np.ndarray  # (Q, S)
    clicked: np.ndarray  # (Q, S) bool
    ordered: np.ndarray  # (Q, S) bool


def query_log(world: World, encoder: ImageEncoder, split: str = "train") -> QueryLog:
    q = world.queries_of(split)
    imp = world.impressions
    imp = imp[imp["query_id"].isin(q["query_id"])].sort_values(["query_id", "position"])
    s = int(imp.groupby("query_id").size().max()) if len(imp) else 0
    slate = np.full((len(q), s), -1, dtype=np.int64)
    clicked = np.zeros((len(q), s), dtype=bool)
    ordered = np.zeros((len(q), s), dtype=bool)
    row_of = {qid: i for i, qid in enumerate(q["query_id"].tolist())}
    rows = imp["query_id"].map(row_of).to_numpy()
    pos = imp["position"].to_numpy()
    slate[rows, pos] = imp["item_id"].to_numpy()
    clicked[rows, pos] = imp["clicked"].to_numpy()
    ordered[rows, pos] = imp["ordered"].to_numpy()
    bank = encode_bank(encoder, to_pixels(decode_images(q["image"].tolist())))
    return QueryLog(bank, q["query_id"].to_numpy(np.int64), q["user_id"].to_numpy(np.int64), slate, clicked, ordered)
