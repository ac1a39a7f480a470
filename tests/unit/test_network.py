"""The paper's network (Tables 1-2), the variants' wiring, targets and Eq. 6."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from psc_eval.models.config import config_from_dict, load_config, resolve_variant
from psc_eval.models.dmol import discretized_mix_logistic_nll
from psc_eval.models.losses import chroma_target, mask_target, seg_loss
from psc_eval.models.network import GatedResBlock, PSCNet, embedding_mode

from psc_eval.errors import ConfigError

C = 5  # classes in these tests

TINY = {
    "model": {
        "widths": [4, 8, 8, 8, 8], "blocks": [1, 1, 1, 1, 1], "emb_channels": 16,
        "n_mix": 2, "input_size": 16, "film_hidden": 4, "generator": {"nr_filters": 8,
                                                                      "nr_resnet": 1},
    },
    "train": {"batch_size": 2},
}


def tiny(variant: str, **model_kw):
    raw = {"model": {**TINY["model"], **model_kw}, "train": dict(TINY["train"])}
    cfg = resolve_variant(config_from_dict(raw, "test"), variant)
    torch.manual_seed(0)
    return PSCNet(cfg.model, C, variant != "psc-purple", cfg.train.loss_weights), cfg


def batch(B=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "L": torch.rand(B, 1, size, size, generator=g) * 100,
        "ab": torch.rand(B, 2, size, size, generator=g) * 200 - 100,
        "mask": torch.randint(0, C, (B, size, size), generator=g),
    }


@pytest.mark.parametrize("variant,cond_ch,has_seg", [
    ("psc-purple", 16, False), ("psc-purple-blue", 16, True), ("ours", 16 + C, True),
    ("psc-film", 16, True),
])
def test_variant_shapes_and_terms(variant, cond_ch, has_seg):
    net, _ = tiny(variant)
    b = batch()
    emb, logits = net.embed(b["L"])
    assert emb.shape == (2, 16, 4, 4)  # 16 px input, factor 4
    assert (logits is not None) == has_seg
    if has_seg:
        assert logits.shape == (2, C, 4, 4)
    cond = net.condition(emb, logits)
    assert cond.shape == (2, cond_ch, 4, 4)
    assert net.g.cond_channels == cond_ch
    terms = net(b)
    assert set(terms) == {"L_emb_bpd", "L_gen_bpd", "total"} | ({"L_seg"} if has_seg else set())
    assert all(torch.isfinite(v) for v in terms.values())


def test_concat_is_probabilities_and_film_starts_as_identity():
    net, _ = tiny("ours")
    emb, logits = net.embed(batch()["L"])
    cond = net.condition(emb, logits)
    torch.testing.assert_close(cond[:, :16], emb)
    torch.testing.assert_close(cond[:, 16:], torch.softmax(logits, 1))
    torch.testing.assert_close(cond[:, 16:].sum(1), torch.ones(2, 4, 4))
    film, _ = tiny("psc-film")
    emb, logits = film.embed(batch()["L"])
    torch.testing.assert_close(film.condition(emb, logits), emb)  # zero-initialised last conv
    with torch.no_grad():
        film.film.body[-1].bias[:16] = 1.0  # gamma = 1, beta = 0 -> doubled embedding
    torch.testing.assert_close(film.condition(emb, logits), 2 * emb)


def test_paper_config_full_size_shapes_on_meta():
    """Full Table 1/2 forward with shape inference only (meta tensors: no compute)."""
    cfg = resolve_variant(load_config("paper"), "ours")
    with torch.device("meta"):
        net = PSCNet(cfg.model, 21, True)
        emb, logits = net.embed(torch.zeros(2, 1, 128, 128))
        cond = net.condition(emb, logits)
        params = net.g(torch.zeros(2, 2, 32, 32), cond)
    assert emb.shape == (2, 160, 32, 32)
    assert logits.shape == (2, 21, 32, 32)
    assert cond.shape == (2, 181, 32, 32)
    assert params.shape == (2, 60, 32, 32)
    # Table 1 rows 1-6 shared: conv 64, blocks x2, conv/2 128, blocks x2, conv/2 256, blocks x2
    convs = [m for m in net.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (1, 64, 1), (64, 128, 2), (128, 256, 2)]
    assert [len(m) for m in net.trunk if isinstance(m, torch.nn.Sequential)] == [2, 2, 2]

    def dil(top):
        return [blk.conv1.dilation[0] for m in top if isinstance(m, torch.nn.Sequential)
                for blk in m if isinstance(blk, GatedResBlock)]

    assert dil(net.f_top) == [2, 2, 2, 4, 4, 4]  # Table 1 rows 8, 10
    assert dil(net.h_top) == [2, 2, 2, 2, 2, 2]  # Table 2 rows 8, 10
    assert [h.dilation[0] for h in net.aspp.heads] == [6, 12, 18]
    assert net.f_top[-1].out_channels == 160
    assert net.f_top[0].in_channels == 256 and net.f_top[0].out_channels == 512


def test_shared_rows_are_the_same_parameters():
    net, _ = tiny("ours")
    trunk_ids = {id(p) for p in net.trunk.parameters()}
    assert len(net.trunk) == 6
    # f and h read the one trunk: no copy of its parameters in either top
    assert not trunk_ids & {id(p) for p in net.f_top.parameters()}
    assert not trunk_ids & {id(p) for p in net.h_top.parameters()}
    b = batch()
    terms = net(b)
    g_seg = torch.autograd.grad(terms["L_seg"], list(net.trunk.parameters()), retain_graph=True)
    g_emb = torch.autograd.grad(terms["L_emb_bpd"], list(net.trunk.parameters()))
    assert all(float(g.abs().sum()) > 0 for g in g_seg)
    assert all(float(g.abs().sum()) > 0 for g in g_emb)
    # perturbing a shared weight moves both f's embedding and h's logits
    emb0, log0 = net.embed(b["L"])
    with torch.no_grad():
        net.trunk[0].weight.add_(0.1)
    emb1, log1 = net.embed(b["L"])
    assert (emb1 - emb0).abs().max() > 0 and (log1 - log0).abs().max() > 0
    net8, _ = tiny("ours", shared_rows=8)  # the other reading: rows 1-8
    assert len(net8.trunk) == 8 and isinstance(net8.trunk[-1], torch.nn.Sequential)
    assert isinstance(net8.h_top[0], torch.nn.Conv2d)  # h's own rows start at row 9


def _gen_grads_on_h(variant):
    net, _ = tiny(variant)
    terms = net(batch())
    h_params = list(net.h_top.parameters()) + list(net.aspp.parameters())
    grads = torch.autograd.grad(terms["L_gen_bpd"], h_params, allow_unused=True)
    return sum(0.0 if g is None else float(g.abs().sum()) for g in grads)


def test_gen_loss_reaches_h_only_through_concat():
    assert _gen_grads_on_h("ours") > 0
    assert _gen_grads_on_h("psc-purple-blue") == 0.0


def test_loss_weights_and_units():
    net, _ = tiny("ours")
    net.loss_weights = (2.0, 3.0, 5.0)
    b = batch()
    terms = net(b)
    expect = 2 * terms["L_emb_bpd"] + 3 * terms["L_seg"] + 5 * terms["L_gen_bpd"]
    torch.testing.assert_close(terms["total"], expect)
    # L_gen in bits per chroma value: independent sum over pixels and both channels
    x = chroma_target(b["ab"], 4)
    emb, logits = net.embed(b["L"])
    params = net.g(x, net.condition(emb, logits))
    nll = discretized_mix_logistic_nll(params, x)  # (B,h,w) nats, a + b
    ref = float(nll.detach().double().sum()) / (2 * 4 * 4 * 2 * math.log(2))
    assert abs(float(terms["L_gen_bpd"].detach()) - ref) < 1e-5
    ce = torch.nn.functional.cross_entropy(logits, mask_target(b["mask"], 4))
    torch.testing.assert_close(terms["L_seg"], ce)
    purple, _ = tiny("psc-purple")
    t = purple(b)
    torch.testing.assert_close(t["total"], t["L_emb_bpd"] + t["L_gen_bpd"])


def test_targets_match_independent_references():
    rng = np.random.default_rng(0)
    ab = torch.from_numpy(rng.uniform(-140, 140, size=(2, 2, 16, 16))).float()
    x = chroma_target(ab, 4)
    ref = ab.numpy().reshape(2, 2, 4, 4, 4, 4).mean(axis=(3, 5))
    ref = (np.clip(np.round(ref), -127, 128) - 0.5) / 127.5
    np.testing.assert_allclose(x.numpy(), ref, atol=1e-6)
    grid = np.round((x.numpy() + 1) * 127.5)  # exactly on the 256-bin grid
    np.testing.assert_allclose((x.numpy() + 1) * 127.5, grid, atol=1e-4)
    m = rng.integers(0, 21, size=(16, 16))
    m[0, 0] = 255
    pil = np.asarray(Image.fromarray(m.astype(np.uint8)).resize((4, 4), Image.NEAREST))
    np.testing.assert_array_equal(mask_target(torch.from_numpy(m)[None], 4)[0].numpy(), pil)


def test_seg_loss_ignores_255_and_all_ignored_is_zero():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    mask = torch.tensor([[[0, 255], [2, 255]]])
    lp = torch.log_softmax(logits, 1)
    ref = -(lp[0, 0, 0, 0] + lp[0, 2, 1, 0]) / 2
    torch.testing.assert_close(seg_loss(logits, mask), ref)
    z = seg_loss(logits, torch.full((1, 2, 2), 255))
    assert float(z.detach()) == 0.0 and z.requires_grad


def test_embedding_mode_reference():
    K = 3
    p = torch.randn(2, 6 * K, 3, 3)
    out = embedding_mode(p).numpy()
    pn = p.numpy()
    for bi in range(2):
        for i in range(3):
            for j in range(3):
                k = int(np.argmax(pn[bi, :K, i, j]))
                a = pn[bi, K + k, i, j]
                b = pn[bi, 2 * K + k, i, j] + np.tanh(pn[bi, 5 * K + k, i, j]) * a
                np.testing.assert_allclose(out[bi, :, i, j], np.clip([a, b], -1, 1), atol=1e-6)


def test_config_errors_name_key_and_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[model]\nwidthz = [1]\n")
    with pytest.raises(ConfigError, match=r"'model.widthz'.*bad.toml"):
        load_config(str(p))
    p.write_text("[train]\nlr = \"fast\"\n")
    with pytest.raises(ConfigError, match=r"'train.lr'.*wrong type.*bad.toml"):
        load_config(str(p))
    p.write_text("[model.generator]\nnr_filterz = 3\n")
    with pytest.raises(ConfigError, match=r"'model.generator.nr_filterz'"):
        load_config(str(p))
    p.write_text("[model]\nshared_rows = 11\n")
    with pytest.raises(ConfigError, match="shared_rows"):
        load_config(str(p))
    p.write_text("[train]\nepochs = true\n")
    with pytest.raises(ConfigError, match="'train.epochs'"):
        load_config(str(p))
    with pytest.raises(ConfigError, match="config not found"):
        load_config("no-such-config")


def test_shipped_configs_load_with_paper_values():
    paper = load_config("paper")
    assert paper.model.widths == (64, 128, 256, 512, 512)
    assert paper.model.emb_channels == 160 and paper.model.shared_rows == 6
    assert paper.model.emb_size == 32 and paper.model.n_mix == 10
    assert paper.train.betas == (0.95, 0.9995) and paper.train.lr == 1e-3
    assert paper.train.polyak == 0.9995 and paper.train.loss_weights == (1.0, 100.0, 1.0)
    toy = load_config("toy", {"train.epochs": 3})
    assert toy.model.emb_size == 16 and toy.train.epochs == 3
