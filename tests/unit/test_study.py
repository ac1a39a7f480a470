"""The naturalness study: create (stimuli, manifest), observer order, tally and its intervals."""

from __future__ import annotations

import json
import math
import re
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab
from statsmodels.stats.proportion import proportion_confint

from psc_eval.cli import main
from psc_eval.data import get_dataset
from psc_eval.errors import ColorizerOutputError, PscError
from psc_eval.study import (
    TallyConfig,
    create_study,
    format_table,
    load_study,
    read_responses,
    tally_study,
    two_way_bootstrap,
    wilson_interval,
)
from psc_eval.study.store import RESPONSES, encode_record
from psc_eval.study.tally import draw_weights

HELPER = textwrap.dedent('''
    import torch

    class WrongColour:
        """Deliberately wrong: the same purple-ish chroma everywhere."""
        name = "wrong"
        stochastic = False
        def __init__(self, **kw):
            pass
        def colorize(self, L, n_samples=1, *, generator=None):
            B, _, H, W = L.shape
            ab = torch.tensor([20.0, -20.0]).view(1, 1, 2, 1, 1)
            return ab.expand(B, n_samples, 2, H, W).clone()

    class HalfRes:
        """No keyword arguments at all; chroma at half resolution (upsampled by the harness)."""
        name = "halfres"
        stochastic = False
        def __init__(self):
            pass
        def colorize(self, L, n_samples=1, *, generator=None):
            B, _, H, W = L.shape
            return torch.full((B, n_samples, 2, H // 2, W // 2), 10.0)

    class Broken:
        name = "broken"
        stochastic = False
        def __init__(self, **kw):
            pass
        def colorize(self, L, n_samples=1, *, generator=None):
            B, _, H, W = L.shape
            return torch.full((B, n_samples, 2, H, W), float("nan"))

    class Noisy:
        """Stochastic: chroma drawn from the generator it is given."""
        name = "noisy"
        stochastic = True
        def __init__(self, **kw):
            pass
        def colorize(self, L, n_samples=1, *, generator=None):
            B, _, H, W = L.shape
            return 30 * torch.rand(B, n_samples, 2, H, W, generator=generator) - 15
''')


@pytest.fixture
def helper_module(tmp_path, monkeypatch):
    d = tmp_path / "helpers"
    d.mkdir()
    (d / "study_test_colorizers.py").write_text(HELPER)
    monkeypatch.syspath_prepend(str(d))
    return "study_test_colorizers"


def _make(tmp_path, methods="gray,gt", n=3, seed=0, name="study", **kw):
    kw.setdefault("n_vigilance", 4)
    kw.setdefault("display_size", 64)
    return create_study("toy", methods, n, seed, tmp_path / name, progress=False, **kw)


def _pixels(study_dir, trial: dict) -> np.ndarray:
    return np.asarray(Image.open(study_dir / "stimuli" / trial["stimulus"]).convert("RGB"))


def _toy_sample(image_id: str):
    ds = get_dataset("toy")
    return ds[ds.ids.index(image_id)]


# ---------------------------------------------------------------------------- create


def test_create_writes_manifest_and_opaque_stimuli(tmp_path):
    path = _make(tmp_path)
    study = tmp_path / "study"
    m = json.loads(path.read_text())
    trials = m["trials"]
    assert len(trials) == 3 * 2 + 4
    kinds = [t["kind"] for t in trials.values()]
    assert kinds.count("test") == 6
    assert kinds.count("vigilance-real") == 2 and kinds.count("vigilance-wrong") == 2
    assert sorted(t["method"] for t in trials.values() if t["kind"] == "test") == ["gray"] * 3 + [
        "gt"] * 3
    assert {m_["method"] for m_ in m["methods"]} == {"gray", "gt"}
    assert all(m_["weights_sha256"] is None for m_ in m["methods"])
    # test and catch images are distinct images of the dataset
    assert len(set(m["images"]) | set(m["vigilance_images"])) == 3 + 4
    files = sorted(p.name for p in (study / "stimuli").iterdir())
    assert files == sorted(t["stimulus"] for t in trials.values())
    for t in trials.values():
        # names reveal nothing: random hex, no method, no image id
        assert re.fullmatch(r"[0-9a-f]{32}\.png", t["stimulus"])
        assert re.fullmatch(r"[0-9a-f]{16}", next(k for k, v in trials.items() if v is t))
        assert _pixels(study, t).shape == (64, 64, 3)
    assert not list(study.glob(".*partial*"))


def test_stimuli_keep_original_L_and_method_chroma(tmp_path, helper_module):
    _make(tmp_path, methods=f"gray,gt,{helper_module}:WrongColour", n=2)
    study = tmp_path / "study"
    m = json.loads((study / "manifest.json").read_text())
    for t in m["trials"].values():
        s = _toy_sample(t["image_id"])
        lab = rgb2lab(_pixels(study, t) / 255.0)  # independent colour conversion
        L_true = s["L"][0].numpy()
        if t["kind"] != "vigilance-wrong" or t.get("manipulation") == "hue-rotated-180":
            # every stimulus but the channel-cycled catch trial keeps the original L
            assert np.median(np.abs(lab[..., 0] - L_true)) < 0.6, t
        if t["method"] == "gray":
            assert np.abs(lab[..., 1:]).max() < 1.0
        elif t["method"] == "gt" or t["kind"] == "vigilance-real":
            ref = (s["rgb"].permute(1, 2, 0).numpy() * 255).round()
            assert np.abs(_pixels(study, t).astype(float) - ref).max() <= 1.0
        elif t["method"] == f"{helper_module}:WrongColour":
            a, b = np.median(lab[..., 1]), np.median(lab[..., 2])
            assert abs(a - 20) < 1.0 and abs(b + 20) < 1.0
        elif t["kind"] == "vigilance-wrong":
            ab_true = s["ab"].permute(1, 2, 0).numpy()
            if t["manipulation"] == "hue-rotated-180":  # chroma negated
                err = np.median(np.abs(lab[..., 1:] + ab_true))
                assert err < 3.0, err
            # either way the colours are far from the real ones
            assert np.median(np.hypot(*(lab[..., 1:] - ab_true).transpose(2, 0, 1))) > 20


def test_display_size_resamples_every_stimulus(tmp_path):
    _make(tmp_path, n=1, display_size=96)
    for p in (tmp_path / "study" / "stimuli").iterdir():
        assert Image.open(p).size == (96, 96)


def test_stochastic_method_one_seeded_sample(tmp_path, helper_module):
    spec = f"{helper_module}:Noisy"

    def content(name, seed):
        d = tmp_path / name
        _make(tmp_path, methods=spec, n=2, seed=seed, name=name, n_vigilance=0)
        m = json.loads((d / "manifest.json").read_text())
        return {t["image_id"]: _pixels(d, t) for t in m["trials"].values() if t["kind"] == "test"}

    a, b, c = content("a", 5), content("b", 5), content("c", 6)
    assert a.keys() == b.keys()
    for k in a:  # same seed: identical pixels (file names differ)
        np.testing.assert_array_equal(a[k], b[k])
    assert a.keys() != c.keys() or any((a[k] != c[k]).any() for k in a)


def test_create_refuses_existing_study_and_bad_options(tmp_path):
    _make(tmp_path, n=1)
    with pytest.raises(PscError, match="already exists"):
        _make(tmp_path, n=1)
    with pytest.raises(PscError, match="listed twice"):
        _make(tmp_path, methods="gray,gray", name="x")
    with pytest.raises(PscError, match="unknown colorizer"):
        _make(tmp_path, methods="gray,nope", name="y")
    with pytest.raises(PscError, match="display-size"):
        _make(tmp_path, display_size=8, name="z")
    with pytest.raises(PscError, match="needs 6 colour images .* has 3"):
        _make(tmp_path, n=2, name="w", methods="gray", dataset_obj=get_dataset("toy", n_images=3))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_user_classes_without_kwargs_and_bad_output(tmp_path, helper_module):
    _make(tmp_path, methods=f"{helper_module}:HalfRes", n=1, n_vigilance=0, name="h")
    m = json.loads((tmp_path / "h" / "manifest.json").read_text())
    (t,) = m["trials"].values()
    lab = rgb2lab(_pixels(tmp_path / "h", t) / 255.0)
    assert np.abs(np.median(lab[..., 1:].reshape(-1, 2), 0) - 10).max() < 1.0
    with pytest.raises(PscError, match="takes no weights"):
        _make(tmp_path, methods=f"{helper_module}:HalfRes", name="h2",
              weights={f"{helper_module}:HalfRes": "x.pt"})
    with pytest.raises(ColorizerOutputError, match="NaN or infinite chroma for image .toy-val-"):
        _make(tmp_path, methods=f"gray,{helper_module}:Broken", n=1, name="b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == []  # no half study left


def test_model_without_weights_fails_before_rendering(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PSC_SHIPPED", "0")  # nothing trained and nothing shipped
    with pytest.raises(PscError):
        _make(tmp_path, methods="gray,ours", name="m")
    assert not (tmp_path / "m").exists()


def test_cli_create_and_weights_syntax(tmp_path, capsys):
    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as e:
        main(["study", "create", "--methods", "gray,gt", "--images", "1", "--seed", "3",
              "--out", str(out), "--display-size", "64"])
    assert e.value.code == 0
    assert "(6 trials per observer)" in capsys.readouterr().out  # 2 + default 4 catch trials
    with pytest.raises(SystemExit) as e:
        main(["study", "create", "--methods", "gray", "--out", str(tmp_path / "w"),
              "--weights", "gray"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("psc-eval: error: --weights expects METHOD=PATH") and "\n" not in err


# ---------------------------------------------------------------------------- observer order


def test_observer_order_is_a_seeded_permutation(tmp_path):
    study = load_study(_make(tmp_path, n=4).parent)
    a1, a2, b = study.order_for("alice"), study.order_for("alice"), study.order_for("bob")
    assert a1 == a2 and sorted(a1) == sorted(study.trials) and a1 != b
    study.seed += 1
    assert study.order_for("alice") != a1
    # catch trials are mixed in, not appended: over many observers they land everywhere
    firsts = {study.order_for(f"o{i}")[0] for i in range(60)}
    assert any(study.trials[t].kind != "test" for t in firsts)


# ---------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (37, 120), (999, 1000),
                                 (3, 7)])
@pytest.mark.parametrize("conf", [0.95, 0.9])
def test_wilson_matches_statsmodels(k, n, conf):
    lo, hi = wilson_interval(k, n, conf)
    ref = proportion_confint(k, n, alpha=1 - conf, method="wilson")
    np.testing.assert_allclose([lo, hi], ref, rtol=0, atol=1e-12)


def test_wilson_pinned_and_empty():
    # 5/10, z = 1.959964: centre 0.5, half-width 0.263411
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.236593, abs=1e-6) and hi == pytest.approx(0.763407, abs=1e-6)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_draw_weights_are_multinomial_counts():
    w = draw_weights(7, 500, torch.Generator().manual_seed(0))
    assert w.shape == (500, 7) and (w.sum(1) == 7).all() and (w >= 0).all()
    assert w.mean() == pytest.approx(1.0)
    assert w.var() == pytest.approx(1 - 1 / 7, rel=0.1)  # binomial(7, 1/7) counts


def _crossed(O, I, p_fn):
    obs, img = np.meshgrid(np.arange(O), np.arange(I), indexing="ij")
    return obs.ravel(), img.ravel(), p_fn(obs.ravel(), img.ravel())


def test_bootstrap_observer_effect_matches_between_observer_variance():
    # Half the observers call everything natural, half nothing: the only uncertainty is
    # which observers were sampled, SE = 0.5 / sqrt(O) (Owen 2007: sigma_A^2 / R).
    O, I = 40, 30
    obs, img, y = _crossed(O, I, lambda o, i: (o < O // 2).astype(float))
    g = torch.Generator().manual_seed(1)
    wo, wi = draw_weights(O, 4000, g), draw_weights(I, 4000, g)
    lo, hi, dropped = two_way_bootstrap(y, obs, img, wo, wi)
    expected = 2 * 1.959964 * 0.5 / math.sqrt(O)
    assert dropped == 0
    assert (hi - lo) == pytest.approx(expected, rel=0.12)
    wl, wh = wilson_interval(int(y.sum()), y.size)
    assert (hi - lo) > 4 * (wh - wl)  # Wilson ignores the clustering


def test_bootstrap_iid_answers_is_conservative_by_sqrt3():
    # No observer or image effect: the pigeonhole bootstrap counts the noise three times
    # (Owen 2007, Thm. 1), so its width is ~sqrt(3) x the binomial width.
    rng = np.random.default_rng(0)
    O, I = 30, 30
    obs, img, y = _crossed(O, I, lambda o, i: (rng.random(o.size) < 0.3).astype(float))
    g = torch.Generator().manual_seed(2)
    lo, hi, _ = two_way_bootstrap(y, obs, img, draw_weights(O, 4000, g), draw_weights(I, 4000, g))
    wl, wh = wilson_interval(int(y.sum()), y.size)
    assert (hi - lo) / (wh - wl) == pytest.approx(math.sqrt(3), rel=0.15)


def test_bootstrap_degenerate_and_seeded():
    obs, img, y = _crossed(5, 4, lambda o, i: np.ones(o.size))
    g = torch.Generator().manual_seed(0)
    assert two_way_bootstrap(y, obs, img, draw_weights(5, 200, g), draw_weights(4, 200, g))[:2] \
        == (1.0, 1.0)
    y2 = (obs + img) % 2 * 1.0

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return two_way_bootstrap(y2, obs, img, draw_weights(5, 300, g), draw_weights(4, 300, g))

    assert run(3) == run(3) and run(3) != run(4)


# ---------------------------------------------------------------------------- tally


def _write_answers(study_dir, rows):
    with open(study_dir / RESPONSES, "ab") as f:
        f.writelines(encode_record(r) + b"\n" for r in rows)


def test_tally_counts_exclusions_and_torn_lines(tmp_path, capsys):
    study_dir = _make(tmp_path, n=3).parent
    st = load_study(study_dir)
    rows = []
    expect_nat = {"gray": 0, "gt": 0}
    for who in ("good", "sloppy", "partial"):
        for i, tid in enumerate(st.order_for(who)):
            t = st.trials[tid]
            if who == "partial" and t.kind != "test":
                continue  # answers no catch trial: cannot be checked
            if t.kind == "test":
                nat = t.method == "gt" or i % 3 == 0
                if who == "good":
                    expect_nat[t.method] += nat
            else:
                right = t.kind == "vigilance-real"
                nat = right if who == "good" else not right
            rows.append({"observer": who, "trial": tid,
                         "answer": "natural" if nat else "not_natural", "natural": nat})
    _write_answers(study_dir, rows)
    _write_answers(study_dir, [rows[0]])  # a duplicate: the first answer counts
    with open(study_dir / RESPONSES, "ab") as f:
        f.write(encode_record(rows[1])[:40])  # torn last line (kill mid-write)

    log = read_responses(study_dir / RESPONSES)
    assert (len(log.records), log.bad_lines, log.duplicates) == (len(rows), 1, 1)

    res = tally_study(study_dir, config=TallyConfig(n_boot=500, seed=1))
    saved = json.loads((study_dir / "tally.json").read_text())
    assert saved["methods"] == res["methods"]
    assert res["kind"] == "human" and res["table"] == "Table 4"
    o = res["observers"]
    assert (o["total"], o["included"], o["excluded_failed_vigilance"],
            o["excluded_no_vigilance"]) == (3, 1, 1, 1)
    assert o["per_observer"]["good"]["vigilance_accuracy"] == 1.0
    assert o["per_observer"]["sloppy"]["vigilance_accuracy"] == 0.0
    for m in ("gray", "gt"):
        r = res["methods"][m]
        assert (r["n"], r["n_natural"], r["n_observers"], r["n_images"]) == (
            3, expect_nat[m], 1, 3)
        ref = proportion_confint(r["n_natural"], r["n"], alpha=0.05, method="wilson")
        np.testing.assert_allclose(r["wilson"], ref, atol=1e-12)
        assert r["bootstrap"][0] <= r["natural_rate"] <= r["bootstrap"][1]
    vr = res["vigilance"]["vigilance-real"]
    assert (vr["n"], vr["n_natural"], vr["natural_rate"]) == (2, 2, 1.0)
    np.testing.assert_allclose(vr["wilson"], proportion_confint(2, 2, 0.05, "wilson"), atol=1e-12)
    assert res["responses"]["ignored_malformed_lines"] == 1
    assert res["responses"]["ignored_duplicates"] == 1

    # a threshold of 0 keeps the sloppy observer; the unchecked one stays out
    res0 = tally_study(study_dir, tmp_path / "t0.json",
                       TallyConfig(vigilance_threshold=0.0, n_boot=200))
    assert res0["observers"]["included"] == 2 and res0["methods"]["gt"]["n"] == 6
    table = format_table(res0)
    assert "human data" in table and "2 included of 3" in table


def test_tally_cli_prints_table(tmp_path, capsys):
    study_dir = _make(tmp_path, n=1).parent
    st = load_study(study_dir)
    _write_answers(study_dir, [
        {"observer": "a", "trial": t, "answer": "natural", "natural": True}
        for t in st.order_for("a")])
    with pytest.raises(SystemExit) as e:
        main(["study", "tally", str(study_dir), "--n-boot", "200", "--vigilance-threshold",
              "0.5"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert re.search(r"^gray\s+1\s+100\.0", out, re.MULTILINE) and "human data" in out
    with pytest.raises(SystemExit) as e:
        main(["study", "tally", str(study_dir), "--vigilance-threshold", "2"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["study", "tally", str(tmp_path)])
    assert e.value.code == 2 and "no study manifest" in capsys.readouterr().err
