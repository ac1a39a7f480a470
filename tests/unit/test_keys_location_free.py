"""Run keys and score keys name the judge's weights by content, not by where they lie: the
same run from two clones at other paths gets one run file and one cache entry."""

from __future__ import annotations

import copy

import torch

from psc_eval.cache import row_keys
from psc_eval.colorizer import GrayColorizer
from psc_eval.data import get_dataset
from psc_eval.judge import load_segmenter
from psc_eval.results import RunResult, run_key

JUDGE = {"name": "j", "builder": "smp", "num_classes": 10, "weights": "/clone-a/judge.pt",
         "weights_sha256": "ab" * 32}


def _run(judge_config, sha="ab" * 32):
    return RunResult(kind="miou", dataset="toy", segmenter="j", colorizer="gray", split="val",
                     seed=0, metrics={"miou": 0.5},
                     provenance={"judge": "j", "judge_weights_sha256": sha,
                                 "judge_config": judge_config, "dataset_fingerprint": {"n": 2}})


def test_run_key_ignores_the_judge_weights_path_not_their_content():
    moved = {**JUDGE, "weights": "/elsewhere/clone-b/judge.pt"}
    assert run_key(_run(JUDGE)) == run_key(_run(moved))
    other = {**JUDGE, "weights_sha256": "cd" * 32}
    assert run_key(_run(JUDGE)) != run_key(_run(other, sha="cd" * 32))
    assert run_key(_run(JUDGE)) != run_key(_run({**JUDGE, "num_classes": 11}))


def test_score_key_ignores_the_judge_weights_path_not_their_content(one_thread):
    torch.manual_seed(0)
    seg = load_segmenter("deeplabv3plus-resnet18", num_classes=10)
    ds = get_dataset("toy", n_images=2)
    a, b = copy.copy(seg), copy.copy(seg)
    a.config = {**seg.config, "weights": "/clone-a/judge.pt"}
    b.config = {**seg.config, "weights": "/clone-b/judge.pt"}
    keys = [row_keys(GrayColorizer(), "gray", s, ds, 0, 1, 2, "cpu")[1] for s in (a, b)]
    assert keys[0] == keys[1]
    b.weights_sha256 = "cd" * 32
    assert row_keys(GrayColorizer(), "gray", b, ds, 0, 1, 2, "cpu")[1] != keys[0]
