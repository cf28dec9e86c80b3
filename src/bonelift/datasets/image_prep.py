"""Preparing `ImageSet`s for method 3's image CNN (Sec. 4): selection, the 250/225 resize, random and centre
crops that carry their joints along, and AlexNet-style PCA lighting noise.

The paper resizes each person crop to 250 x 250 and feeds random 225 x 225 crops of it (the centre crop
at test time). For another network input size S the stored crops are resized to `resized_side(S)`
(S x 250 / 225), so the crop always covers the same share of the person. Joints are in a crop's
normalised frame ((0, 0) top-left, (1, 1) bottom-right corner), which a resize leaves unchanged and a
crop maps with `geometry.to_crop`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bonelift.datasets.h36m import canonical_action
from bonelift.datasets.images import ImageSet
from bonelift.errors import DataError
from bonelift.geometry import to_crop

STORED, CROPPED = 250, 225  # the paper's resized person crop and its random crop (Sec. 4)


def resized_side(crop: int) -> int:
    """Side the stored crops are resized to before cropping `crop` pixels: the paper's 250 -> 225 ratio."""
    return int(round(crop * STORED / CROPPED))


def select_images(images: ImageSet, subjects: tuple[str, ...], actions: tuple[str, ...] = (),
                  source: str | Path | None = None, stride: int = 1) -> ImageSet:
    """The samples of `subjects` (and `actions`, all when empty), every `stride`-th; none left is a DataError
    naming `source` and what the file holds."""
    keep = np.isin(images.subject, list(subjects))
    if actions:
        keep &= np.isin(images.action, [canonical_action(a) for a in actions])
    rows = np.flatnonzero(keep)[::stride]
    if len(rows) == 0:
        what = f"subjects {', '.join(subjects)}" + (f" and actions {', '.join(actions)}" if actions else "")
        raise DataError(source, f"no image of {what} (the file holds subjects {', '.join(np.unique(images.subject))}; "
                                f"actions {', '.join(np.unique(images.action))})")
    return images.subset(rows)


def resize_images(images: np.ndarray, side: int, chunk: int = 256) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, side, side, 3) uint8, antialiased bilinear (unchanged when S == side).

    Done once per set, in chunks, so training crops from a uint8 array that may live on the GPU.
    """
    if images.shape[1] == side:
        return images
    out = np.empty((len(images), side, side, 3), np.uint8)
    for i in range(0, len(images), chunk):
        x = torch.from_numpy(images[i : i + chunk]).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        out[i : i + chunk] = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def random_offsets(n: int, resized: int, side: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 2) top-left corners (x, y) of uniformly random `side` crops inside `resized`-pixel images."""
    return torch.randint(0, resized - side + 1, (n, 2), generator=generator)


def centre_offsets(n: int, resized: int, side: int) -> torch.Tensor:
    """(n, 2) top-left corners of the centre crop (the paper's test-time crop)."""
    return torch.full((n, 2), (resized - side) // 2, dtype=torch.long)


def crop_batch(images: torch.Tensor, joints2d: torch.Tensor, offsets: torch.Tensor,
               side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops (B, side, side, 3) of (B, R, R, 3) images at `offsets` (B, 2) (x, y), and their joints (B, J, 2)
    moved into each crop's frame."""
    resized = images.shape[1]
    offsets = offsets.to(images.device)
    span = torch.arange(side, device=images.device)
    ys = (offsets[:, 1, None] + span)[:, :, None]  # (B, side, 1)
    xs = (offsets[:, 0, None] + span)[:, None, :]  # (B, 1, side)
    crops = images[torch.arange(len(images), device=images.device)[:, None, None], ys, xs]
    centre = (offsets.to(joints2d.dtype).to(joints2d.device) + side / 2) / resized
    box = torch.cat([centre, torch.full_like(centre[:, :1], side / resized)], -1)  # (centre x, centre y, side)
    return crops, to_crop(joints2d, box)


def rgb_statistics(images: np.ndarray, max_pixels: int = 1_000_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean (3,) and covariance (3, 3) of the RGB values (0-255) of (N, S, S, 3) images, from at most
    `max_pixels` pixels drawn at random (a million pixels pin both far below one grey level, at a fraction of
    the cost of all pixels of a large set)."""
    n, s = images.shape[:2]
    total = n * s * s
    if total <= max_pixels:
        pixels = images.reshape(-1, 3)
    else:
        rng = np.random.default_rng(seed)
        pixels = images[rng.integers(0, n, max_pixels), rng.integers(0, s, max_pixels), rng.integers(0, s, max_pixels)]
    pixels = pixels.astype(np.float64)
    return pixels.mean(0), np.atleast_2d(np.cov(pixels, rowvar=False))


def lighting_basis(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal components (3, 3) (columns) of an RGB covariance and the standard deviation (3,) along each."""
    values, vectors = np.linalg.eigh(np.asarray(cov, np.float64))
    return vectors, np.sqrt(np.clip(values, 0.0, None))


def pca_lighting(images: torch.Tensor, eigvec: torch.Tensor, eigstd: torch.Tensor, strength: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """AlexNet's colour augmentation: add sum_i alpha_i sigma_i p_i to every pixel of an image, alpha_i ~ N(0,
    `strength`) drawn per image, p_i / sigma_i the principal components of the training RGB values and
    the standard deviation along them (reading of "eigenvalue": the spread in pixel units).

    `images` (B, ..., 3) channels last, values 0-255; the result has their shape and dtype (uint8 is
    rounded and clamped).
    """
    alpha = torch.randn(len(images), 3, generator=generator).to(images.device) * strength
    shift = (alpha * eigstd.to(alpha)) @ eigvec.to(alpha).T  # (B, 3): each image's RGB offset
    shift = shift.view(len(images), *([1] * (images.ndim - 2)), 3)
    if images.dtype == torch.uint8:
        return (images.float() + shift).round().clamp(0, 255).to(torch.uint8)
    return images + shift.to(images.dtype)
