"""Decode the world's image columns into arrays, and group images by item."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onevision.world.io import World
from onevision.world.render import decode_image


def decode_images(blobs: list[bytes] | np.ndarray) -> np.ndarray:
    """PNG/JPEG bytes → uint8 (N, H, W, 3). All images must share one shape."""
    arrays = [decode_image(b) for b in blobs]
    if not arrays:
        return np.zeros((0, 0, 0, 3), np.uint8)
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"images have mixed shapes {sorted(shapes)}; expected one shape")
    return np.stack(arrays)


@dataclass(frozen=True)
class ItemImages:
    """Every training image of every item: shop views plus (optionally) train-split user photos."""

    images: np.ndarray  # uint8 (N, H, W, 3)
    item_ids: np.ndarray  # int64 (N,)
    is_user_photo: np.ndarray  # bool (N,)

    @classmethod
    def from_world(cls, world: World, include_user_photos: bool = True, split: str = "train") -> "ItemImages":
        views = world.item_views
        images = [decode_images(views["image"].tolist())]
        ids = [views["item_id"].to_numpy(np.int64)]
        user = [np.zeros(len(views), bool)]
        if include_user_photos:
            q = world.queries_of(split)
            if len(q):
                images.append(decode_images(q["image"].tolist()))
                ids.append(q["target_item_id"].to_numpy(np.int64))
                user.append(np.ones(len(q), bool))
        return cls(np.concatenate(images), np.concatenate(ids), np.concatenate(user))

    def shop_views(self) -> "ItemImages":
        keep = ~self.is_user_photo
        return ItemImages(self.images[keep], self.item_ids[keep], self.is_user_photo[keep])
