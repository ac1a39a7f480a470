"""sRGB <-> CIE Lab (D65) in batched torch, and the L / ab normalisation.

This module is the ONLY home of the colour constants of the project.

The conversion follows ``skimage.color.rgb2lab`` / ``lab2rgb`` exactly
(sRGB companding, the Rec. 709 / D65 matrix, CIE 1976 L*a*b* with the 0.008856
threshold), including ``lab2rgb``'s clipping: a Lab value whose Z would be
negative gets Z = 0, and the resulting RGB is clipped to [0, 1]. Out-of-gamut
Lab therefore maps to the nearest representable colour channel by channel, not
to a perceptually nearest colour.

Normalisation for the generative models follows the paper's stated Lab range
L in [0, 100], a and b in [-127, 128] (Sec. 4.1): ``x_L = (L - 50) / 50`` and
``x_ab = (ab - 0.5) / 127.5``, 256 bins of one Lab unit each.
"""

from __future__ import annotations

import torch
from torch import Tensor

# D65 reference white, 2 degree observer (skimage's default illuminant).
XYZ_REF_WHITE = (0.95047, 1.0, 1.08883)

XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)

# CIE constants as skimage writes them.
_EPS = 0.008856
_KAPPA_SLOPE = 7.787
_OFFSET = 16.0 / 116.0
_LAB_INV_THRESHOLD = 0.2068966
_SRGB_THRESHOLD = 0.04045
_LINEAR_THRESHOLD = 0.0031308

# The paper's Lab range and the model normalisation (Sec. 4.1).
L_MIN, L_MAX = 0.0, 100.0
AB_MIN, AB_MAX = -127.0, 128.0
L_CENTER, L_SCALE = 50.0, 50.0
AB_CENTER, AB_SCALE = 0.5, 127.5
AB_BINS = 256  # one Lab unit per bin


def _matrix(m, like: Tensor) -> Tensor:
    return torch.tensor(m, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


_RGB_FROM_XYZ = torch.linalg.inv(torch.tensor(XYZ_FROM_RGB, dtype=torch.float64))


def _rgb_from_xyz(like: Tensor) -> Tensor:
    return _RGB_FROM_XYZ.to(device=like.device, dtype=like.dtype)


def _apply(mat: Tensor, x: Tensor) -> Tensor:
    # x (B,3,H,W), mat (3,3): out[:, i] = sum_j mat[i, j] x[:, j]
    return torch.einsum("ij,bjhw->bihw", mat, x)


def _check(x: Tensor, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B,3,H,W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got {x.dtype}")


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0, 1], (B,3,H,W) -> Lab (B,3,H,W), L in [0, 100]; as skimage rgb2lab."""
    _check(rgb, "rgb")
    lin = torch.where(
        rgb > _SRGB_THRESHOLD,
        ((rgb.clamp_min(_SRGB_THRESHOLD) + 0.055) / 1.055) ** 2.4,
        rgb / 12.92,
    )
    xyz = _apply(_matrix(XYZ_FROM_RGB, rgb), lin)
    white = torch.tensor(XYZ_REF_WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    t = xyz / white
    f = torch.where(t > _EPS, t.clamp_min(_EPS) ** (1.0 / 3.0), _KAPPA_SLOPE * t + _OFFSET)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    L = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack([L, a, b], dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Lab (B,3,H,W) -> sRGB in [0, 1]; as skimage lab2rgb (negative Z set to 0, RGB clipped)."""
    _check(lab, "lab")
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp_min(0.0)
    f = torch.stack([fx, fy, fz], dim=1)
    t = torch.where(
        f > _LAB_INV_THRESHOLD, f.clamp_min(_LAB_INV_THRESHOLD) ** 3, (f - _OFFSET) / _KAPPA_SLOPE
    )
    white = torch.tensor(XYZ_REF_WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    lin = _apply(_rgb_from_xyz(lab), t * white)
    rgb = torch.where(
        lin > _LINEAR_THRESHOLD,
        1.055 * lin.clamp_min(_LINEAR_THRESHOLD) ** (1.0 / 2.4) - 0.055,
        12.92 * lin,
    )
    return rgb.clamp(0.0, 1.0)


def combine_lab(L: Tensor, ab: Tensor) -> Tensor:
    """Join L (B,1,H,W) with ab (B,2,H',W'); ab is bilinearly resized to L's size if needed."""
    if ab.shape[-2:] != L.shape[-2:]:
        ab = torch.nn.functional.interpolate(
            ab, size=L.shape[-2:], mode="bilinear", align_corners=False
        )
    return torch.cat([L, ab.to(L.dtype)], dim=1)


def lab_parts_to_rgb(L: Tensor, ab: Tensor) -> Tensor:
    """Recombine chroma with the ORIGINAL luminance and convert to RGB once."""
    return lab_to_rgb(combine_lab(L, ab))


def to_uint8(rgb: Tensor) -> Tensor:
    """[0, 1] float RGB -> uint8 with round-half-to-even (as skimage img_as_ubyte)."""
    return torch.round(rgb.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def normalize_L(L: Tensor) -> Tensor:
    """Lab L in [0, 100] -> [-1, 1]."""
    return (L - L_CENTER) / L_SCALE


def denormalize_L(x: Tensor) -> Tensor:
    return x * L_SCALE + L_CENTER


def normalize_ab(ab: Tensor) -> Tensor:
    """Lab ab in [-127, 128] -> [-1, 1] (256 bins of one Lab unit)."""
    return (ab - AB_CENTER) / AB_SCALE


def denormalize_ab(x: Tensor) -> Tensor:
    """[-1, 1] -> Lab ab in [-127, 128]."""
    return x * AB_SCALE + AB_CENTER
