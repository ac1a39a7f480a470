"""Stand-in judges and colorizers for the runner tests (importable as ``runner_standins:X``).

``ChromaJudge`` labels each pixel with the toy class whose prototype colour is nearest in
integer RGB (ties to the lower class): exact integer arithmetic, so an independent numpy
version reproduces its labels bit for bit.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

# Toy class prototypes as uint8 RGB (from the class means in psc_eval/data/toy.py, rounded).
PROTOTYPES = np.array([
    [141, 188, 237],  # sky
    [88, 135, 29],    # grass
    [156, 123, 67],   # sand
    [52, 85, 38],     # tree
    [122, 88, 60],    # cow
    [217, 69, 66],    # umbrella
    [194, 45, 57],    # car
    [245, 223, 19],   # sun
    [236, 237, 244],  # cloud
    [115, 114, 111],  # rock
], dtype=np.int64)


def chroma_judge_numpy(rgb_u8: np.ndarray) -> np.ndarray:
    """(B,H,W,3) uint8 -> (B,H,W) labels; the reference of ChromaJudge.predict."""
    x = rgb_u8.astype(np.int64)
    d = ((x[..., None, :] - PROTOTYPES[None, None, None]) ** 2).sum(-1)  # (B,H,W,K)
    return d.argmin(-1)


class ChromaJudge:
    name = "chroma-judge"
    num_classes = 10
    weights_sha256 = None

    def __init__(self, weights=None, num_classes: int = 10, device: str = "cpu", **_):
        self.device = device
        self.config = {"prototypes": "toy class means"}
        self.calls = 0

    def logits(self, rgb: torch.Tensor) -> torch.Tensor:
        x = torch.round(rgb.to(torch.float64) * 255.0)  # (B,3,H,W), integers
        p = torch.from_numpy(PROTOTYPES).to(x)  # (K,3)
        d = ((x[:, None] - p[None, :, :, None, None]) ** 2).sum(2)  # (B,K,H,W)
        return -d

    def predict(self, rgb: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.logits(rgb).argmax(1)


class _Base:
    stochastic = False
    oracle = False
    weights_sha256 = None
    config = None

    def __init__(self, **_):
        pass


class TiltColorizer(_Base):
    """Deterministic ab from L (a = 0.4 (L - 50), b = 20), counting its images in a file.

    Sleeps ``PSC_TEST_SLEEP`` seconds per batch so a test can interrupt a run midway.
    """

    name = "tilt"

    def colorize(self, L, n_samples=1, *, generator=None):
        counter = os.environ.get("PSC_TEST_COUNTER")
        if counter:
            with open(counter, "a") as f:
                f.write(f"{L.shape[0]}\n")
        time.sleep(float(os.environ.get("PSC_TEST_SLEEP", "0")))
        a = 0.4 * (L - 50.0)
        b = torch.full_like(L, 20.0)
        return torch.cat([a, b], 1)[:, None].repeat(1, n_samples, 1, 1, 1)


class NoisyColorizer(_Base):
    """Stochastic: ab drawn from the generator (tests of per-batch seeding)."""

    name = "noisy"
    stochastic = True

    def colorize(self, L, n_samples=1, *, generator=None):
        B, _, H, W = L.shape
        return (30.0 * torch.randn(B, n_samples, 2, H, W, generator=generator)).clamp(-100, 100)


class BadColorizer(_Base):
    """Fine on the first batch, then NaN (or 200 with PSC_TEST_BAD=range) in image 1."""

    name = "bad"

    def __init__(self, **_):
        self.calls = 0

    def colorize(self, L, n_samples=1, *, generator=None):
        self.calls += 1
        out = torch.zeros(L.shape[0], n_samples, 2, *L.shape[-2:])
        if self.calls >= 2:
            out[1, 0, 0, 3, 3] = 200.0 if os.environ.get("PSC_TEST_BAD") == "range" else float("nan")
        return out


class PlainColorizer:
    """A user's minimal colorizer: no constructor arguments at all."""

    name = "plain"
    stochastic = False

    def __init__(self):
        pass

    def colorize(self, L, n_samples=1, *, generator=None):
        return torch.full((L.shape[0], n_samples, 2, *L.shape[-2:]), 5.0)


class WarmColorizer(_Base):
    """ab = (temperature * 10, 0): shows which temperature reached the colorizer."""

    name = "warm"

    def __init__(self, temperature: float = 1.0):
        self.temperature = temperature
        self.config = {"temperature": temperature}

    def colorize(self, L, n_samples=1, *, generator=None):
        ab = torch.zeros(L.shape[0], n_samples, 2, *L.shape[-2:])
        ab[:, :, 0] = 10.0 * self.temperature
        return ab
