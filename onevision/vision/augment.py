"""Photo-like augmentation on batches of pixels: random camera, lighting, blur, occlusion, noise."""
from __future__ import annotations


import torch
from torch.nn import functional as F


def augment(pixels: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """pixels: float (B, 3, H, W) in [0, 1]. Same generator state → same augmentation."""
    b = pixels.shape[0]

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*(shape or (b,)), generator=generator)

    angle = u(-0.45, 0.45) * strength
    scale = torch.exp(u(-0.25, 0.3) * strength)
    shift = u(-0.18, 0.18, b, 2) * strength
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    out = F.grid_sample(pixels, grid, padding_mode="border", align_corners=False)
    gain = u(1 - 0.35 * strength, 1 + 0.25 * strength).view(b, 1, 1, 1)
    cast = 1 + u(-0.12, 0.12, b, 3, 1, 1) * strength
    out = out * gain * cast
    blur = (torch.rand(b, generator=generator) < 0.4 * strength).view(b, 1, 1, 1)
    out = torch.where(blur, F.avg_pool2d(out, 3, stride=1, padding=1, count_include_pad=False), out)
    h, w = out.shape[-2:]
    occlude = torch.rand(b, generator=generator) < 0.35 * strength
    for i in torch.nonzero(occlude).flatten().tolist():
        oh, ow = int(u(0.1, 0.35, 1) * h), int(u(0.1, 0.35, 1) * w)
        y, x = int(u(0, 1, 1) * (h - oh)), int(u(0, 1, 1) * (w - ow))
        out[i, :, y : y + oh, x : x + ow] = torch.rand(3, 1, 1, generator=generator)
    out = out + torch.randn(out.shape, generator=generator) * 0.03 * strength
    return out.clamp_(0, 1)


