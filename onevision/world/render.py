"""Analytic renderer: a product is a shape with a surface pattern and a brand plate, drawn under a
homography. Shop views use fixed studio geometry; user photos use a random camera whose strength
grows with the discrepancy level (perspective, crop, clutter, lighting, blur, occlusion, noise).

Rendering maps every output pixel back to product coordinates (u, v) in [-1, 1]², so any camera is
exact and cheap (no resampling): one 64×64 image costs well under a millisecond.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

PALETTE = np.array(
    [
        [220, 40, 40], [40, 160, 60], [40, 80, 210], [240, 200, 40], [150, 60, 190], [250, 130, 30],
        [30, 190, 200], [240, 120, 170], [120, 80, 40], [30, 30, 30], [130, 200, 60], [0, 110, 110],
    ],
    dtype=np.float32,
) / 255.0
N_COLOURS = len(PALETTE)
N_SHAPES = 10
N_PATTERNS = 6
BACKGROUND = np.array([0.95, 0.95, 0.93], dtype=np.float32)
PLATE_CENTRE = (0.0, 0.12)
PLATE_HALF = 0.3


@dataclass(frozen=True)
class ItemLook:
    shape: int
    aspect: float
    colour: int
    secondary_colour: int
    pattern: int
    pattern_freq: float
    pattern_angle: float
    brand: int


def _shape_mask(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.sqrt(u * u + v * v)
    theta = np.arctan2(v, u)
    if shape == 0:  # disc
        return r < 0.8
    if shape == 1:  # square
        return np.maximum(np.abs(u), np.abs(v)) < 0.72
    if shape == 2:  # triangle
        return (v < 0.7) & (np.abs(u) < (v + 0.8) * 0.55)
    if shape == 3:  # diamond
        return np.abs(u) + np.abs(v) < 0.9
    if shape == 4:  # hexagon
        return np.maximum(np.abs(u) * 0.866 + np.abs(v) * 0.5, np.abs(v)) < 0.75
    if shape == 5:  # star
        return r < 0.58 + 0.24 * np.cos(5 * theta)
    if shape == 6:  # cross
        return ((np.abs(u) < 0.3) & (np.abs(v) < 0.85)) | ((np.abs(v) < 0.3) & (np.abs(u) < 0.85))
    if shape == 7:  # ring with a thick rim
        return (r < 0.85) & (r > 0.35) | (np.maximum(np.abs(u), np.abs(v - 0.12)) < PLATE_HALF + 0.04)
    if shape == 8:  # capsule
        return (np.abs(u) < 0.45) & (np.abs(v) < 0.85) | (np.sqrt(u * u + (np.abs(v) - 0.4) ** 2) < 0.45)
    # trapezoid (bag)
    return (np.abs(v) < 0.75) & (np.abs(u) < 0.55 + 0.25 * (v + 0.75) / 1.5)


def _pattern_mix(look: ItemLook, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Share of the secondary colour in [0, 1] at each point."""
    f, a = look.pattern_freq, look.pattern_angle
    t = u * np.cos(a) + v * np.sin(a)
    if look.pattern == 0:  # solid
        return np.zeros_like(u)
    if look.pattern == 1:  # stripes
        return (np.sin(f * t) > 0).astype(np.float32)
    if look.pattern == 2:  # dots
        return ((np.sin(f * u) * np.sin(f * v)) > 0.45).astype(np.float32)
    if look.pattern == 3:  # checker
        return ((np.floor(f * u / np.pi) + np.floor(f * v / np.pi)) % 2).astype(np.float32)
    if look.pattern == 4:  # gradient
        return np.clip((t + 1.0) / 2.0, 0, 1)
    return (np.sin(f * np.sqrt(u * u + v * v)) > 0).astype(np.float32)  # rings


def _brand_bits(brand: int) -> np.ndarray:
    """A 3×3 glyph per brand; every brand has a distinct, non-empty glyph."""
    code = (brand * 37 + 11) % 511 + 1
    return np.array([(code >> k) & 1 for k in range(9)], dtype=bool).reshape(3, 3)


def _brand_colour(brand: int) -> np.ndarray:
    return PALETTE[(brand * 5 + 3) % N_COLOURS] * 0.6


def shade_item(look: ItemLook, u: np.ndarray, v: np.ndarray, show_plate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Colour (H, W, 3) and coverage mask (H, W) of the product at product coordinates (u, v)."""
    ua = u / look.aspect
    mask = _shape_mask(look.shape, ua, v)
    mix = _pattern_mix(look, ua, v)[..., None]
    rgb = (1 - mix) * PALETTE[look.colour] + mix * PALETTE[look.secondary_colour]
    if show_plate:
        pu = (u - PLATE_CENTRE[0]) / PLATE_HALF
        pv = (v - PLATE_CENTRE[1]) / PLATE_HALF
        on_plate = (np.abs(pu) < 1) & (np.abs(pv) < 1) & mask
        cells_u = np.clip(((pu + 1) * 1.5).astype(int), 0, 2)
        cells_v = np.clip(((pv + 1) * 1.5).astype(int), 0, 2)
        bits = _brand_bits(look.brand)[cells_v, cells_u]
        plate = np.where(bits[..., None], _brand_colour(look.brand), np.float32(0.97))
        rgb = np.where(on_plate[..., None], plate, rgb)
    return rgb.astype(np.float32), mask


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(c, c)
    return x, y


def _apply_homography(h: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    w = np.where(np.abs(w) < 1e-3, 1e-3, w)
    u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w
    v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w
    return u, v


def _affine(scale_x: float, scale_y: float, shift_x: float = 0.0, shift_y: float = 0.0, flip: bool = False) -> np.ndarray:
    sx = -scale_x if flip else scale_x
    return np.array([[sx, 0, shift_x], [0, scale_y, shift_y], [0, 0, 1]], dtype=np.float64)


# Image-to-product maps per shop view. "side" squashes the width and darkens one flank; "back" is
# mirrored with no brand plate; "detail" and "zoom" crop in.
_VIEW_GEOMETRY = {
    "front": _affine(1.15, 1.15),
    "side": np.array([[1.9, 0.0, 0.0], [0.0, 1.15, 0.0], [0.18, 0.0, 1.0]]),
    "back": _affine(1.15, 1.15, flip=True),
    "detail": _affine(0.5, 0.5, PLATE_CENTRE[0], PLATE_CENTRE[1]),
    "zoom": _affine(0.7, 0.7, 0.25, -0.3),
}


def render_view(look: ItemLook, view: str, size: int = 64) -> np.ndarray:
    """A studio shop image of one view, float32 (H, W, 3) in [0, 1]."""
    x, y = _pixel_grid(size)
    u, v = _apply_homography(_VIEW_GEOMETRY[view], x, y)
    rgb, mask = shade_item(look, u, v, show_plate=view != "back")
    light = 1.0 - 0.25 * np.clip(x, 0, 1)[..., None] if view == "side" else 1.0
    img = np.where(mask[..., None], rgb * light, BACKGROUND)
    return np.clip(img, 0, 1).astype(np.float32)


def _clutter(rng: np.random.Generator, size: int, strength: float) -> np.ndarray:
    """A cluttered background: tinted base plus random blobs and bars."""
    x, y = _pixel_grid(size)
    base = BACKGROUND * (1 - strength) + rng.uniform(0.2, 0.9, 3).astype(np.float32) * strength
    img = np.broadcast_to(base, (size, size, 3)).copy()
    for _ in range(int(round(6 * strength))):
        colour = PALETTE[rng.integers(N_COLOURS)] * rng.uniform(0.6, 1.1)
        cx, cy, rad = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.1, 0.5)
        if rng.random() < 0.5:
            m = (x - cx) ** 2 + (y - cy) ** 2 < rad * rad
        else:
            m = (np.abs(x - cx) < rad) & (np.abs(y - cy) < rad * 0.3)
        img[m] = colour
    return img


def _box_blur(img: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return img
    k = 2 * radius + 1
    pad = np.pad(img, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    c = pad.cumsum(0).cumsum(1)
    c = np.pad(c, ((1, 0), (1, 0), (0, 0)))
    h, w = img.shape[:2]
    s = c[k : k + h, k : k + w] - c[0:h, k : k + w] - c[k : k + h, 0:w] + c[0:h, 0:w]
    return (s / (k * k)).astype(np.float32)


def render_user_photo(look: ItemLook, rng: np.random.Generator, discrepancy: float, size: int = 64) -> np.ndarray:
    """A user's photo of the product: random camera, clutter, lighting, blur, occlusion, noise."""
    d = float(np.clip(discrepancy, 0.0, 1.5))
    base_view = rng.choice(["front", "front", "side", "back"]) if d > 0 else "front"
    angle = rng.uniform(-1, 1) * 0.7 * d
    scale = float(np.exp(rng.uniform(-0.25, 0.4) * d)) * 1.15
    shift = rng.uniform(-0.35, 0.35, 2) * d
    persp = rng.uniform(-0.35, 0.35, 2) * d
    c, s = np.cos(angle), np.sin(angle)
    camera = np.array(
        [[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]], [persp[0], persp[1], 1.0]]
    )
    view_geom = _VIEW_GEOMETRY[base_view] @ np.diag([1 / 1.15, 1 / 1.15, 1.0])
    x, y = _pixel_grid(size)
    u, v = _apply_homography(view_geom @ camera, x, y)
    rgb, mask = shade_item(look, u, v, show_plate=base_view != "back")
    background = _clutter(rng, size, min(1.0, d))
    img = np.where(mask[..., None], rgb, background)
    gain = rng.uniform(1 - 0.45 * d, 1 + 0.25 * d)
    cast = 1 + rng.uniform(-0.2, 0.2, 3).astype(np.float32) * d
    img = img * gain * cast
    img = _box_blur(img.astype(np.float32), int(rng.integers(0, 1 + int(round(2 * d)))))
    if rng.random() < 0.6 * d:
        ox, oy = rng.integers(0, size, 2)
        ow, oh = rng.integers(size // 8, max(size // 8 + 1, int(size * 0.4 * d)), 2)
        img[oy : oy + oh, ox : ox + ow] = PALETTE[rng.integers(N_COLOURS)] * 0.8
    img = img + rng.normal(0, 0.06 * d, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def encode_png(img: np.ndarray) -> bytes:
    arr = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes → uint8 (H, W, 3). Raises ValueError naming the problem on bad bytes."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # PIL raises several types for corrupt data
        raise ValueError(f"image bytes could not be decoded ({type(exc).__name__}: {exc})") from exc

VIEWS_RENDERED: tuple[str, ...] = tuple(_VIEW_GEOMETRY)
