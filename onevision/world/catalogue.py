"""Products and users of the synthetic world (their latent parameters included)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onevision.world.behaviour import CatalogueFacts, UserPreferences
from onevision.world.config import WorldConfig
from onevision.world.render import N_COLOURS, N_PATTERNS, ItemLook

BASE_PRICE = np.array([12.0, 30.0, 70.0, 160.0, 400.0, 900.0, 2000.0, 5000.0])


@dataclass(frozen=True)
class Catalogue:
    facts: CatalogueFacts
    price: np.ndarray
    shape: np.ndarray
    pattern: np.ndarray
    first_day: np.ndarray
    secondary_colour: np.ndarray
    pattern_freq: np.ndarray
    pattern_angle: np.ndarray
    aspect: np.ndarray
    popularity: np.ndarray

    def look(self, row: int) -> ItemLook:
        f = self.facts
        return ItemLook(
            shape=int(self.shape[row]),
            aspect=float(self.aspect[row]),
            colour=int(f.colour[row]),
            secondary_colour=int(self.secondary_colour[row]),
            pattern=int(self.pattern[row]),
            pattern_freq=float(self.pattern_freq[row]),
            pattern_angle=float(self.pattern_angle[row]),
            brand=int(f.brand[row]),
        )

    def __len__(self) -> int:
        return len(self.facts.item_ids)


def make_catalogue(cfg: WorldConfig) -> Catalogue:
    """Near-duplicate families share shape and pattern; within a family, half the variants differ
    only by brand (same colours), which makes instance-level retrieval hard."""
    rng = np.random.default_rng([cfg.seed, 1])
    n = cfg.items
    n_families = -(-n // cfg.family_size)
    fam_category = rng.integers(0, cfg.categories, n_families)
    fam_pattern = rng.integers(0, N_PATTERNS, n_families)
    fam_freq = rng.uniform(5.0, 14.0, n_families)
    fam_angle = rng.uniform(0, np.pi, n_families)
    fam_aspect = rng.uniform(0.75, 1.2, n_families)
    fam_colour = rng.integers(0, N_COLOURS, n_families)
    fam_secondary = (fam_colour + rng.integers(1, N_COLOURS, n_families)) % N_COLOURS

    family = np.arange(n) // cfg.family_size
    variant = np.arange(n) % cfg.family_size
    colour = fam_colour[family].copy()
    secondary = fam_secondary[family].copy()
    recolour = variant % 2 == 1  # odd variants change colours, even ones only the brand
    colour[recolour] = (colour[recolour] + 1 + variant[recolour] * 3) % N_COLOURS
    secondary[recolour] = (colour[recolour] + 1 + rng.integers(0, N_COLOURS - 1, recolour.sum())) % N_COLOURS
    brand = np.empty(n, dtype=np.int64)
    for f in range(n_families):  # distinct brands inside a family keep every item distinct
        members = np.flatnonzero(family == f)
        brand[members] = rng.choice(cfg.brands, size=len(members), replace=len(members) > cfg.brands)
    tier = brand % cfg.price_bands
    price_band = np.clip(tier + rng.integers(-1, 2, n), 0, cfg.price_bands - 1)
    price = np.round(BASE_PRICE[price_band] * rng.uniform(0.8, 1.25, n), 2)

    first_day = np.zeros(n, dtype=np.int64)
    drift = cfg.drift
    if drift.start_day is not None and drift.new_item_share > 0:
        new = rng.random(n) < drift.new_item_share
        first_day[new] = drift.start_day

    facts = CatalogueFacts(
        item_ids=np.arange(n, dtype=np.int64),
        category=fam_category[family].astype(np.int64),
        brand=brand,
        price_band=price_band.astype(np.int64),
        colour=colour.astype(np.int64),
        family_id=family.astype(np.int64),
    )
    return Catalogue(
        facts=facts,
        price=price,
        shape=facts.category.copy(),  # a category is a kind of product: one silhouette each
        pattern=fam_pattern[family].astype(np.int64),
        first_day=first_day,
        secondary_colour=secondary.astype(np.int64),
        pattern_freq=fam_freq[family].astype(np.float32),
        pattern_angle=fam_angle[family].astype(np.float32),
        aspect=fam_aspect[family].astype(np.float32),
        popularity=rng.lognormal(0.0, 0.8, n).astype(np.float32),
    )


@dataclass(frozen=True)
class Population:
    prefs: UserPreferences
    signup_day: np.ndarray
    age_band: np.ndarray
    declared_category: np.ndarray
    price_sensitivity: np.ndarray
    activity: np.ndarray


def make_population(cfg: WorldConfig) -> Population:
    rng = np.random.default_rng([cfg.seed, 2])
    u = cfg.users
    brand_pref = rng.dirichlet(np.full(cfg.brands, 0.3), u).astype(np.float32)
    category_pref = rng.dirichlet(np.full(cfg.categories, 0.5), u).astype(np.float32)
    price_pref = rng.dirichlet(np.full(cfg.price_bands, 0.6), u).astype(np.float32)
    declared = np.where(
        rng.random(u) < 0.7, category_pref.argmax(1), rng.integers(0, cfg.categories, u)
    ).astype(np.int64)
    expected_band = price_pref @ np.arange(cfg.price_bands) / max(1, cfg.price_bands - 1)
    sensitivity = np.clip(1.0 - expected_band + rng.normal(0, 0.1, u), 0, 1)
    return Population(
        prefs=UserPreferences(
            user_ids=np.arange(u, dtype=np.int64),
            brand_pref=brand_pref,
            category_pref=category_pref,
            price_pref=price_pref,
        ),
        signup_day=np.where(rng.random(u) < 0.85, 0, rng.integers(0, cfg.days, u)).astype(np.int64),
        age_band=rng.integers(0, 5, u).astype(np.int64),
        declared_category=declared,
        price_sensitivity=np.round(sensitivity, 4),
        activity=rng.lognormal(0, 0.7, u),
    )


def shifted_preferences(prefs: UserPreferences, shift: float) -> UserPreferences:
    """Preference drift: move a share of every user's brand and price affinity to other brands/bands."""
    if shift <= 0:
        return prefs
    n_brands = prefs.brand_pref.shape[1]
    moved_brand = np.roll(prefs.brand_pref, n_brands // 2, axis=1)
    moved_price = prefs.price_pref[:, ::-1]
    return UserPreferences(
        user_ids=prefs.user_ids,
        brand_pref=((1 - shift) * prefs.brand_pref + shift * moved_brand).astype(np.float32),
        category_pref=prefs.category_pref,
        price_pref=((1 - shift) * prefs.price_pref + shift * moved_price).astype(np.float32),
    )
