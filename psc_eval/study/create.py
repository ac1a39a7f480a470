"""``psc-eval study create``: pick images, render every method's colorization, write stimuli.

The protocol follows the naturalness study of the paper (Sec. 4, Table 4): observers see
one image at a time, either a colorization or a real photo, and decide whether it looks
natural. Each stimulus is the method's chroma recombined with the ORIGINAL luminance and
converted to RGB once (as the harness does for every metric), so no method can win by
altering L. Stochastic methods contribute one sample per image: sample 0 of the one colorize
path (``psc_eval.colorize``), the very colorization the image's mIoU was scored on for the
study seed and the evaluation batch size.

Vigilance (catch) trials are mixed in to flag inattentive observers: real images (expected
answer "natural") and deliberately wrong colours (expected "not natural"): chroma rotated
by 180 degrees in the ab plane (blue sky turns yellow, green grass magenta) or the RGB
channels cycled; the wrong chroma is again recombined with the original L so the only cue
is colour. Vigilance images are drawn from images not used by the test trials.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import __version__
from ..color import lab_parts_to_rgb, rgb_to_lab
from ..colorize import BATCH_SIZE, colorize_indices, to_rgb_u8
from ..colorizer import build_colorizer
from ..data import get_dataset
from ..data.base import SegDataset
from ..errors import PscError
from ..io import atomic_write, atomic_write_json, ensure_dir, sha256_file
from ..progress import bar as progress_bar
from .store import MANIFEST, RESPONSES, SCHEMA, STIMULI

WRONG_KINDS = ("hue-rotated-180", "channel-cycled")


@dataclass
class StudyConfig:
    """Everything ``create_study`` needs; recorded in the manifest."""

    dataset: str = "toy"
    methods: list[str] = field(default_factory=lambda: ["gray", "gt"])
    n_images: int = 20
    seed: int = 0
    root: str | None = None
    split: str | None = None
    size: int | None = None
    display_size: int = 256
    n_vigilance: int | None = None  # None: max(4, ceil(10% of the test trials)), even
    weights: dict[str, str] = field(default_factory=dict)  # method -> weights path
    device: str = "cpu"
    batch_size: int = BATCH_SIZE  # the evaluation batch size whose samples the stimuli show


def default_vigilance(n_test: int) -> int:
    """At least 4 catch trials (so a 75% threshold means something), ~10% of the test trials."""
    k = max(4, math.ceil(0.1 * n_test))
    return k + (k % 2)  # half real, half wrong


def _seed_for(seed: int, what: str) -> int:
    """A 63-bit seed derived from the study seed and a label (adding a method keeps others)."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{what}".encode()).digest()[:8], "big") >> 1


def parse_methods(methods: str | list[str]) -> list[str]:
    items = methods.split(",") if isinstance(methods, str) else list(methods)
    items = [m.strip() for m in items if m.strip()]
    if not items:
        raise PscError("no methods given, in --methods, pass e.g. --methods gray,gt")
    dup = sorted({m for m in items if items.count(m) > 1})
    if dup:
        raise PscError(f"method(s) {', '.join(dup)} listed twice, in --methods, list each once")
    return items


def pick_images(ds: SegDataset, n: int, seed: int) -> list[tuple[int, dict[str, Any]]]:
    """The first ``n`` colour images of a seeded permutation of the dataset (skips gray ones)."""
    g = torch.Generator().manual_seed(_seed_for(seed, "images"))
    chosen = []
    for idx in torch.randperm(len(ds), generator=g).tolist():
        s = ds[idx]
        if s["skip"] is None:
            chosen.append((idx, s))
            if len(chosen) == n:
                return chosen
    raise PscError(
        f"the study needs {n} colour images (test + vigilance) but the dataset has "
        f"{len(chosen)}, in --images/--vigilance, lower them or use a larger split"
    )


def wrong_colours(L: torch.Tensor, ab: torch.Tensor, how: str) -> torch.Tensor:
    """Deliberately wrong chroma for a catch trial, (B,2,H,W) in Lab units."""
    if how == "hue-rotated-180":
        return -ab
    if how == "channel-cycled":  # RGB -> BRG, then keep only the new chroma
        rgb = lab_parts_to_rgb(L, ab)
        return rgb_to_lab(rgb[:, [2, 0, 1]])[:, 1:]
    raise ValueError(how)


def _to_png_writer(rgb_u8: np.ndarray, display: int) -> Callable[[Any], None]:
    im = Image.fromarray(rgb_u8)
    if im.size != (display, display):
        # Every stimulus is resampled the same way here, so no browser's scaler differs.
        im = im.resize((display, display), Image.LANCZOS)

    def write(f):
        im.save(f, format="PNG", optimize=False)

    return write


def create_study(
    dataset: str = "toy",
    methods: str | list[str] = ("gray", "gt"),
    n_images: int = 20,
    seed: int = 0,
    out_dir: str | Path = "study",
    *,
    root: str | None = None,
    split: str | None = None,
    size: int | None = None,
    display_size: int = 256,
    n_vigilance: int | None = None,
    weights: dict[str, str] | None = None,
    device: str = "cpu",
    batch_size: int = BATCH_SIZE,
    dataset_obj: SegDataset | None = None,
    progress: bool = True,
) -> Path:
    """Create a naturalness study in ``out_dir``; returns the manifest path.

    Refuses a folder that already holds a study (its responses would lose their meaning).
    All colorizers are built before anything is rendered, so an unusable method (e.g. a
    model without trained weights) fails fast; stimuli are rendered into a temporary
    folder that is renamed into place only when complete, and the manifest is written
    last, so an interrupted create leaves no half study behind.
    """
    cfg = StudyConfig(dataset, parse_methods(methods), int(n_images), int(seed), root, split,
                      size, int(display_size), n_vigilance, dict(weights or {}), device,
                      int(batch_size))
    if cfg.n_images < 1:
        raise PscError(f"--images must be >= 1, got {cfg.n_images}, in the options, pass 1+")
    if not 32 <= cfg.display_size <= 2048:
        raise PscError(
            f"--display-size must lie in [32, 2048] px, got {cfg.display_size}, "
            "in the options, use e.g. 256"
        )
    unknown_w = sorted(set(cfg.weights) - set(cfg.methods))
    if unknown_w:
        raise PscError(
            f"--weights names method(s) {', '.join(unknown_w)} not in --methods, "
            "in the options, use --weights METHOD=PATH for a listed method"
        )
    n_test = cfg.n_images * len(cfg.methods)
    n_vig = default_vigilance(n_test) if cfg.n_vigilance is None else int(cfg.n_vigilance)
    if n_vig < 0:
        raise PscError(f"--vigilance must be >= 0, got {n_vig}, in the options, pass 0 or more")

    out = Path(out_dir)
    if (out / MANIFEST).exists() or (out / RESPONSES).exists() or (out / STIMULI).exists():
        raise PscError(
            f"a study already exists, {out}, choose a new --out folder "
            "(or delete the old study if its answers are not needed)"
        )
    # Fail fast: every colorizer must build before any image is rendered.
    colorizers = {m: build_colorizer(m, cfg.dataset, cfg.weights.get(m), cfg.device)
                  for m in cfg.methods}

    ensure_dir(out, "study folder")
    ds = dataset_obj or get_dataset(cfg.dataset, root=cfg.root, split=cfg.split, size=cfg.size)
    picked = pick_images(ds, cfg.n_images + n_vig, cfg.seed)
    test_imgs, vig_imgs = picked[: cfg.n_images], picked[cfg.n_images:]

    def stack(items):
        return (torch.stack([s["L"] for _, s in items]), torch.stack([s["ab"] for _, s in items]),
                [s["id"] for _, s in items])

    trials: dict[str, dict[str, Any]] = {}
    method_info = []
    tmp = out / f".{STIMULI}.partial-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        def emit(rgb_u8: torch.Tensor, info: dict[str, Any]) -> None:
            name = f"{secrets.token_hex(16)}.png"
            arr = rgb_u8.permute(1, 2, 0).cpu().numpy()
            path = atomic_write(tmp / name, _to_png_writer(arr, cfg.display_size))
            tid = secrets.token_hex(8)
            while tid in trials:  # pragma: no cover - 64-bit collision
                tid = secrets.token_hex(8)
            trials[tid] = {**info, "stimulus": name, "sha256": sha256_file(path)}

        bar = progress_bar(total=len(cfg.methods) + bool(vig_imgs), desc="rendering stimuli",
                           unit="method", disable=not progress)
        for m, col in colorizers.items():
            w_sha = getattr(col, "weights_sha256", None)
            if w_sha is None and m in cfg.weights:
                w_sha = sha256_file(cfg.weights[m])
            stochastic = bool(getattr(col, "stochastic", False))
            method_info.append({"method": m, "name": getattr(col, "name", m),
                                "stochastic": stochastic, "weights_sha256": w_sha})
            # sample 0 of the canonical evaluation draw: the colorization mIoU scored
            got = colorize_indices(col, ds, [i for i, _ in test_imgs], seed=cfg.seed,
                                   device=cfg.device, batch_size=cfg.batch_size, name=m)
            for img_id, rgb in zip(got.ids, got.rgb_u8(0).cpu()):
                emit(rgb, {"kind": "test", "method": m, "image_id": img_id,
                           "weights_sha256": w_sha})
            bar.update(1)
        if vig_imgs:
            L, ab_true, ids = stack(vig_imgs)
            real = to_rgb_u8(L, ab_true)
            for i, img_id in enumerate(ids):
                if i % 2 == 0:
                    emit(real[i], {"kind": "vigilance-real", "method": None, "image_id": img_id,
                                   "weights_sha256": None})
                else:
                    how = WRONG_KINDS[(i // 2) % len(WRONG_KINDS)]
                    wrong = to_rgb_u8(L[i:i + 1], wrong_colours(L[i:i + 1], ab_true[i:i + 1],
                                                                how))
                    emit(wrong[0], {"kind": "vigilance-wrong", "method": None, "image_id": img_id,
                                    "weights_sha256": None, "manipulation": how})
            bar.update(1)
        bar.close()
        # Trials are listed in random order so their position says nothing either.
        order = sorted(trials, key=lambda t: hashlib.sha256(t.encode()).digest())
        tmp.rename(out / STIMULI)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    manifest = {
        "schema": SCHEMA,
        "note": "PRIVATE: maps opaque trial ids to methods; never serve this file to observers",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "psc_eval_version": __version__,
        "seed": cfg.seed,
        "dataset": ds.fingerprint(),
        "native_size": int(test_imgs[0][1]["L"].shape[-1]),
        "display_size": cfg.display_size,
        "methods": method_info,
        "n_images": cfg.n_images,
        "n_vigilance": n_vig,
        "images": [s["id"] for _, s in test_imgs],
        "vigilance_images": [s["id"] for _, s in vig_imgs],
        "config": {"device": cfg.device, "batch_size": cfg.batch_size,
                   "weights": cfg.weights, "split": ds.split},
        "trials": {t: trials[t] for t in order},
    }
    return atomic_write_json(out / MANIFEST, manifest)
