"""The world's ground-truth behaviour answering slates of any arm, under the drift the simulator used."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onevision.world.behaviour import ClickOrderModel
from onevision.world.catalogue import Catalogue, Population, shifted_preferences
from onevision.world.config import DriftConfig
from onevision.world.sessions import drift_on


def behaviour_on_day(catalogue: Catalogue, population: Population, drift: DriftConfig, day: int) -> ClickOrderModel:
    """The click/order model of `day`: preferences shifted exactly as `simulate_day` shifts them."""
    prefs = population.prefs
    if drift_on(drift, day):
        prefs = shifted_preferences(prefs, drift.preference_shift)
    return ClickOrderModel(catalogue.facts, prefs)


@dataclass(frozen=True)
class SlateOutcome:
    clicked: np.ndarray  # (Q, K) bool, sampled
    ordered: np.ndarray  # (Q, K) bool, sampled (an order needs a click)
    expected_ctr: np.ndarray  # (Q,) expected clicks per shown slot (NaN for an empty slate)
    expected_cvr: np.ndarray  # (Q,) expected orders / expected clicks (NaN when no click is expected)
    expected_orders: np.ndarray  # (Q,) expected orders per request


def answer_slates(
    model: ClickOrderModel, user_ids: np.ndarray, target_item_ids: np.ndarray, slates: np.ndarray,
    rng: np.random.Generator,
) -> SlateOutcome:
    """Sample clicks and orders for each slate as the simulator does for the logged policy.

    Two uniforms per slot are drawn for every slate whichever arm served it, so at a fixed seed the
    arms see common random numbers and differences come from the slates alone."""
    probs = model.probabilities(user_ids, target_item_ids, slates)
    u = rng.random((2, *slates.shape))
    clicked = u[0] < probs.click
    p_buy = np.divide(probs.order, probs.click, out=np.zeros_like(probs.order), where=probs.click > 0)
    ordered = clicked & (u[1] < p_buy)
    shown = (slates >= 0).sum(axis=1)
    clicks = probs.click.sum(axis=1)
    orders = probs.order.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_ctr = np.where(shown > 0, clicks / np.maximum(shown, 1), np.nan)
        expected_cvr = np.where(clicks > 0, orders / np.where(clicks > 0, clicks, 1), np.nan)
    return SlateOutcome(clicked, ordered, expected_ctr, expected_cvr, orders)
