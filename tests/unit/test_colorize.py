"""The one colorize path: a (seed, image, sample) gets the same chroma in the evaluation
loop, the sample grids, the study's stimuli and the naturalness proxy."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from psc_eval.colorize import batch_seed, canonical_batches, colorize_indices, draw_samples
from psc_eval.data import get_dataset
from psc_eval.experiments.naturalness import _images as proxy_images
from psc_eval.report.grid import TITLE_PX, write_sample_grid
from psc_eval.runner import evaluate
from psc_eval.study.create import create_study

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from runner_standins import NoisyColorizer

SEED, LIMIT = 3, 40  # two canonical batches: [0, 32) and [32, 40)
NOISY = "runner_standins:NoisyColorizer"


@pytest.fixture(autouse=True)
def psc_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def ds():
    return get_dataset("toy").subset(LIMIT)


def _runner_ab(ds, tmp_path, n_samples=1):
    """The float16 chroma the evaluation loop stored for every image, by dataset index."""
    cache = tmp_path / "cache"
    metrics = ("psnr", "diversity") if n_samples > 1 else ("psnr",)
    evaluate(NoisyColorizer(), ds, None, seed=SEED, cache_dir=cache, progress=False,
             metrics=metrics)
    shards = sorted((cache / "ab").glob("*/*.pt"))
    out = {}
    for p in shards:
        shard = torch.load(p, weights_only=True)
        start = int(p.stem.split("-")[0])
        for k in range(len(shard["ids"])):
            out[start + k] = shard["ab"][k]
    assert sorted(out) == list(range(len(ds)))
    return out


def test_canonical_batches_are_the_runners():
    assert canonical_batches(70, 32) == [(0, 32), (32, 64), (64, 70)]


def test_draw_samples_keeps_the_seeding_scheme():
    L = torch.full((2, 1, 8, 8), 50.0)
    got = draw_samples(NoisyColorizer(), L, torch.zeros(2, 2, 8, 8), 3, 3, 4, "cpu",
                       ["a", "b"], "noisy")
    g0 = torch.Generator().manual_seed(batch_seed(3, 4))
    g1 = torch.Generator().manual_seed(batch_seed(3, 4, stream=1))
    want = torch.cat([NoisyColorizer().colorize(L, 1, generator=g0),
                      NoisyColorizer().colorize(L, 2, generator=g1)], 1)
    assert torch.equal(got, want)


def test_colorize_indices_gives_each_image_the_runners_samples(ds, tmp_path):
    ref = _runner_ab(ds, tmp_path, n_samples=2)
    idx = [35, 2, 31, 0]  # across both batches, out of order
    got = colorize_indices(NoisyColorizer(), ds, idx, n_samples=2, seed=SEED)
    assert got.index == idx and got.ids == [ds.ids[i] for i in idx]
    for row, i in enumerate(idx):
        assert torch.equal(got.ab[row].to(torch.float16), ref[i])
    # sample 0 does not depend on whether a second sample was asked
    one = colorize_indices(NoisyColorizer(), ds, idx, seed=SEED)
    assert torch.equal(one.ab[:, 0], got.ab[:, 0])


def test_grid_study_and_proxy_show_the_runners_sample_0(ds, tmp_path):
    ref = _runner_ab(ds, tmp_path)
    want = {i: colorize_indices(NoisyColorizer(), ds, [i], seed=SEED).rgb_u8(0)[0]
            for i in range(len(ds))}
    got = colorize_indices(NoisyColorizer(), ds, range(len(ds)), seed=SEED)
    assert torch.equal(got.ab[:, 0].to(torch.float16), torch.stack([ref[i][0] for i in
                                                                     range(len(ds))]))

    # naturalness proxy: the critic judges the very sample mIoU / PSNR scored
    proxy = proxy_images(NoisyColorizer(), ds, [5, 36], SEED, "cpu")
    for row, i in enumerate((5, 36)):
        assert torch.equal((proxy[row] * 255).round().to(torch.uint8), want[i])

    # sample grid (the whole toy split, first images: the canonical batch [0, 32) is the
    # same with or without the runner's --limit 40)
    path = write_sample_grid([NOISY], "toy", tmp_path / "grid", n=2, limit=3, seed=SEED,
                             min_tile=64)
    grid = np.asarray(Image.open(path).convert("RGB"))
    H = W = ds.size
    for i in range(3):
        tile = grid[TITLE_PX + i * H:TITLE_PX + (i + 1) * H, W:2 * W]  # column 1: sample #1
        np.testing.assert_array_equal(tile, want[i].permute(1, 2, 0).numpy())

    # study: each test stimulus is sample 0 of its image
    study = create_study("toy", NOISY, 3, SEED, tmp_path / "study", n_vigilance=0,
                         display_size=ds.size, dataset_obj=copy.copy(ds), progress=False)
    m = json.loads(Path(study).read_text())
    pos = {img: k for k, img in enumerate(ds.ids)}
    tests = [t for t in m["trials"].values() if t["kind"] == "test"]
    assert len(tests) == 3
    for t in tests:
        px = np.asarray(Image.open(tmp_path / "study" / "stimuli" / t["stimulus"])
                        .convert("RGB"))
        np.testing.assert_array_equal(px, want[pos[t["image_id"]]].permute(1, 2, 0).numpy())
