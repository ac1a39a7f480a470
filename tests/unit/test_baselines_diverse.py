"""The diverse baselines (deshpande2017, cao2017, royer2017): hand-checkable losses, sampling
reproducibility, the GAN's alternating training through ``psc-eval train`` and its resume,
and Deshpande's two training stages. Tiny sizes, one thread."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from click.testing import CliRunner

from psc_eval.checkpoint import load_checkpoint
from psc_eval.colorizer import RANDOM_WEIGHTS, build_colorizer

torch.set_num_threads(1)

DIVERSE = ("deshpande2017", "cao2017", "royer2017")


# ----------------------------------------------------------------------------- losses


def test_mdn_nll_of_one_component_is_a_gaussian_nll():
    from psc_eval.baselines.deshpande2017 import mdn_loss

    g = torch.Generator().manual_seed(0)
    z, mu = torch.randn(5, 3, generator=g), torch.randn(5, 1, 3, generator=g)
    sigma = 0.5
    want = -torch.distributions.Normal(mu[:, 0], sigma).log_prob(z).sum(-1).mean()
    got = mdn_loss(z, mu, torch.zeros(5, 1), sigma, "nll")
    assert torch.allclose(got, want, atol=1e-5)
    # divcolor's "closest" loss with one component: the distance term only (-log 1 = 0),
    # divided by 2 sigma as compute_gmm_loss does (not 2 sigma^2)
    closest = mdn_loss(z, mu, torch.zeros(5, 1), sigma, "closest")
    assert torch.allclose(closest, ((z - mu[:, 0]).square().sum(-1) / (2 * sigma)).mean())


def test_mdn_closest_picks_the_nearest_component_and_its_weight():
    from psc_eval.baselines.deshpande2017 import mdn_loss

    z = torch.tensor([[1.0, 0.0]])
    mu = torch.tensor([[[0.0, 0.0], [1.0, 0.5]]])  # squared distances 1 and 0.25
    logits = torch.log(torch.tensor([[0.75, 0.25]]))
    got = mdn_loss(z, mu, logits, 1.0, "closest")
    assert math.isclose(float(got), 0.25 / 2 - math.log(0.25), rel_tol=1e-6)
    nll = mdn_loss(z, mu, logits, 1.0, "nll")
    mix = 0.75 * math.exp(-1 / 2) + 0.25 * math.exp(-0.25 / 2)
    assert math.isclose(float(nll), -math.log(mix / (2 * math.pi)), rel_tol=1e-6)


def test_gan_losses_signs_and_targets():
    from psc_eval.baselines.cao2017 import gan_losses

    zero = torch.zeros(4)
    d = gan_losses(zero, zero, for_d=True)
    assert math.isclose(float(d["total"]), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(float(gan_losses(None, zero, for_d=False)["total"]), math.log(2),
                        rel_tol=1e-6)
    big = torch.full((4,), 20.0)
    # D right (real -> +, fake -> -): D's loss ~ 0 and G's loss large (non-saturating)
    assert float(gan_losses(big, -big, for_d=True)["total"]) < 1e-6
    assert float(gan_losses(None, -big, for_d=False)["total"]) > 19.0
    # D fooled: G's loss ~ 0, D's fake term large
    assert float(gan_losses(None, big, for_d=False)["total"]) < 1e-6
    assert float(gan_losses(big, big, for_d=True)["fake"]) > 19.0


def test_wgan_losses_are_colorgan_s():
    from psc_eval.baselines.cao2017 import wgan_losses

    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    d = wgan_losses(real, fake, for_d=True)  # mean fake - mean real = -0.5 - 2
    assert math.isclose(float(d["total"]), -2.5) and math.isclose(float(d["real"]), 2.0)
    assert math.isclose(float(wgan_losses(None, fake, for_d=False)["total"]), 0.5)


def test_gradient_penalty_of_a_linear_critic_by_hand():
    from psc_eval.baselines.cao2017 import gradient_penalty

    w = torch.full((1, 3, 2, 2), 0.5)  # |grad| = sqrt(12 * 0.25) = sqrt(3) everywhere
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4, 3, 2, 2, generator=g), torch.randn(4, 3, 2, 2, generator=g)
    gp = gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake,
                          torch.rand(4, 1, 1, 1, generator=g))
    assert math.isclose(float(gp), (math.sqrt(3) - 1) ** 2, rel_tol=1e-6)


def _cao(config: str = "toy", **train):
    from psc_eval.baselines.cao2017 import METHOD, CaoMethod

    from psc_eval.training import load_config

    cfg = load_config(config, METHOD.configs, CaoMethod.model_config, CaoMethod.train_config,
                      {f"train.{k}": v for k, v in train.items()})
    return CaoMethod.build("cao2017", cfg, None), cfg


def test_cao2017_schedule_is_five_d_steps_then_one_g_step():
    m, _ = _cao()
    assert [m.active_optimizers(s, 0) for s in range(7)] == [[0]] * 5 + [[1], [0]]
    assert _cao(d_steps=0)[0].active_optimizers(3, 0) is None  # DCGAN: both


def test_cao2017_clips_every_d_parameter_after_a_d_step_and_leaves_g_alone():
    m, _ = _cao()
    opt_d = m.configure_optimizers(10)[0].optimizer
    with torch.no_grad():
        for p in m.model.parameters():
            p.add_(0.5)
    g_before = [p.clone() for p in m.model.G.parameters()]
    for p in m.model.D.parameters():
        p.grad = torch.ones_like(p)
    opt_d.step()
    assert all(float(p.detach().abs().max()) <= 0.01 for p in m.model.D.parameters())
    assert all(torch.equal(a, b) for a, b in zip(g_before, m.model.G.parameters()))
    gp, _ = _cao(objective="wgan-gp", gan_optimizer="adam")
    opt_d = gp.configure_optimizers(10)[0].optimizer
    with torch.no_grad():
        for p in gp.model.D.parameters():
            p.fill_(0.5)
            p.grad = torch.zeros_like(p)
    opt_d.step()
    assert float(next(gp.model.D.parameters()).detach().max()) == 0.5  # no clipping: a penalty


def test_cao2017_rmsprop_starts_as_tf1_s():
    from psc_eval.baselines.cao2017 import tf_rmsprop

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = tf_rmsprop([p], lr=0.1)
    g = torch.tensor([0.5, 0.001])
    p.grad = g.clone()
    opt.step()
    ms = 0.9 * 1.0 + 0.1 * g.square()  # TF1: the mean square starts at 1
    want = torch.tensor([1.0, -2.0]) - 0.1 * g / (ms.sqrt() + 1e-10)
    assert torch.allclose(p.detach(), want, atol=1e-7)


def test_cao2017_paper_networks_are_colorgan_s():
    m, cfg = _cao("paper")
    net = m.model
    convs = [m for m in net.G.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [7, 5, 5, 5, 5, 5]
    assert [c.out_channels for c in convs] == [128, 64, 64, 64, 32, 2]
    assert [c.in_channels for c in convs] == [2, 129, 65, 65, 65, 33]  # gray at every layer
    lin = [m for m in net.G.modules() if isinstance(m, torch.nn.Linear)]
    assert [(x.in_features, x.out_features) for x in lin] == [(100, 128 * 128)]  # z at 0
    dconv = [m for m in net.D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in dconv] == [
        (5, 2, 64), (5, 2, 128), (5, 2, 256), (5, 2, 512)]
    dlin = [m for m in net.D.modules() if isinstance(m, torch.nn.Linear)]
    assert [(x.in_features, x.out_features) for x in dlin] == [(512 * 8 * 8, 64), (64, 1)]
    t = cfg.train
    assert (t.objective, t.gan_optimizer, t.d_steps, t.clip_value, t.lr, t.g_lr,
            t.batch_size) == ("wgan", "rmsprop", 5, 0.01, 2e-4, 1e-4, 64)
    x = net.G(torch.zeros(2, 1, 128, 128), net.draw_noise(2, torch.Generator(), "cpu"))
    assert x.shape == (2, 2, 128, 128) and net.D(torch.zeros(2, 1, 128, 128), x).shape == (2,)


def test_mahalanobis_loss_by_hand():
    from psc_eval.baselines.deshpande2017 import mahalanobis_loss

    comps = torch.eye(4)[:2]  # e1, e2
    err = torch.tensor([[2.0, 1.0, 1.0, 1.0]])
    # inside: 2^2/4 + 1^2/1 = 2; outside: (1 + 1) / 2 = 1; per value: 3 / 4
    got = mahalanobis_loss(err, comps, torch.tensor([4.0, 1.0]), torch.tensor(2.0))
    assert math.isclose(float(got), 0.75, rel_tol=1e-6)


def test_histogram_weighted_l2_and_gradient_loss_by_hand():
    """divcolor vae_skipconn.py: per image sqrt of the weighted squared error summed over
    pixels and both channels; the gradient term on the common (H-1) x (W-1) corner."""
    from psc_eval.baselines.deshpande2017 import gradient_loss, hist_grid, hist_weighted_l2

    target = torch.zeros(1, 2, 2, 3)  # ab = 0.5 Lab units: one bin everywhere
    pred = target + torch.tensor([0.1, 0.2])[None, :, None, None]
    n = hist_grid(10.0)
    assert n == 27  # centres -130 .. 130: the multiples of 10 around [-128, 128]
    weights = torch.full((n, n), 3.0)
    got = hist_weighted_l2(pred, target, weights, 10.0)
    assert math.isclose(float(got), math.sqrt(3.0 * 6 * (0.01 + 0.04)), rel_tol=1e-5)
    assert float(gradient_loss(pred, target)) == pytest.approx(0.0, abs=1e-6)  # offset only
    ramp = target.clone()
    ramp[:, 0, 0, :] = torch.tensor([0.0, 1.0, 2.0])  # channel a, first row
    # corner 1 x 2 (row 0, x = 0, 1): dh = 1, 1; dv = (0 - 0) - (0 - 0) ... of the ramp:
    # dv at x = 0, 1: row 1 - row 0 = -0, -1; so sum = 1 + 1 + 0 + 1 = 3
    assert float(gradient_loss(ramp, target)) == pytest.approx(math.sqrt(3.0))


def test_kl_to_the_standard_normal():
    from psc_eval.baselines.deshpande2017 import kl_standard_normal

    assert float(kl_standard_normal(torch.zeros(2, 5), torch.zeros(2, 5))) == 0.0
    assert float(kl_standard_normal(torch.ones(2, 5), torch.zeros(2, 5))) == pytest.approx(2.5)


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("name", DIVERSE)
def test_same_generator_same_samples_different_generator_different(name):
    opts = {"config": "toy"}
    c = build_colorizer(name, "toy", weights=RANDOM_WEIGHTS, device="cpu", options=opts)
    L = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 100
    gen = lambda s: torch.Generator().manual_seed(s)
    a, b, c2 = (c.colorize(L, 2, generator=gen(s)) for s in (5, 5, 6))
    assert a.shape == (2, 2, 2, 8, 8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c2)
    assert not torch.equal(a[:, 0], a[:, 1])  # the n samples of one image differ


def test_royer2017_is_psc_purple_network_with_pic_settings():
    from psc_eval.baselines.royer2017 import build_pic_net, load_pic_config
    from psc_eval.models.config import load_config, resolve_variant
    from psc_eval.models.method import build_net

    cfg = load_pic_config("toy")
    purple = build_net("psc-purple", resolve_variant(load_config("toy"), "psc-purple"), 1)
    assert set(build_pic_net(cfg).state_dict()) == set(purple.state_dict())
    assert cfg.train.hflip and cfg.train.adam_eps == 1e-6 and cfg.train.lr_decay == 0.99999
    paper = load_pic_config("paper")
    assert paper.model.emb_channels == 160 and paper.model.generator["nr_resnet"] == 4


# ---------------------------------------------------------------------------- training

TINY_CAO = """
[model]
input_size = 16
g_widths = [4, 4]
g_kernels = [3, 3, 3]
noise_dim = 2
d_widths = [4, 8]
d_kernel = 3
d_hidden = 4

[train]
epochs = 1
batch_size = 4
n_train = 8
d_steps = 1
n_val = 4
"""


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cao2017_trains_through_the_cli_alternating_both_optimisers_and_resumes(tmp_path):
    from psc_eval.cli import cli

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_CAO)
    out = tmp_path / "run"
    args = ["train", "--colorizer", "cao2017", "--dataset", "toy", "--config", str(cfg),
            "--out", str(out), "--device", "cpu"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    rows = _rows(out / "log.csv")
    assert len(rows) == 1
    for k in ("train_D_total", "train_D_real", "train_D_fake", "train_G_total",
              "val_D_total", "val_G_total"):
        assert math.isfinite(float(rows[0][k])), k
    ck = load_checkpoint(out / "last.pt")
    assert len(ck["optimizers"]) == 2
    steps = [int(o["state"][0]["step"]) for o in ck["optimizers"]]  # d_steps 1: D, G
    assert steps == [1, 1]
    r = CliRunner().invoke(cli, args + ["--epochs", "2", "--resume"])
    assert r.exit_code == 0, r.output
    rows = _rows(out / "log.csv")
    assert [row["epoch"] for row in rows] == ["1", "2"]
    ck = load_checkpoint(out / "last.pt")
    assert [int(o["state"][0]["step"]) for o in ck["optimizers"]] == [2, 2]
    c = build_colorizer("cao2017", "toy", weights=str(out / "last.pt"), device="cpu")
    assert c.colorize(torch.full((1, 1, 16, 16), 50.0), 2).shape == (1, 2, 2, 16, 16)


TINY_DESHPANDE = """
[model]
input_size = 16
latent_dim = 4
enc_widths = [4, 4, 4, 4]
cond_widths = [4, 4, 4]
dec_widths = [4, 4, 4, 4]
mdn_widths = [4, 4, 4]
mdn_hidden = 8
n_mix = 2
pca_components = 3
vae_epochs = 1

[train]
epochs = 2
batch_size = 4
n_train = 8
n_val = 4
"""


def test_deshpande2017_trains_the_vae_then_the_mdn(tmp_path):
    from psc_eval.training import train

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_DESHPANDE)
    out = tmp_path / "run"
    train("deshpande2017", "toy", str(cfg), out_dir=out, device="cpu",
                        progress=False)
    e1, e2 = (load_checkpoint(out / f"epoch-000{i}.pt")["model"] for i in (1, 2))
    enc = [k for k in e1 if k.startswith("enc.") and k.endswith("weight")]
    mdn = [k for k in e1 if k.startswith("mdn.") and k.endswith("weight")]
    assert all(torch.equal(e1[k], e2[k]) for k in enc)  # VAE frozen in the MDN stage
    assert any(not torch.equal(e1[k], e2[k]) for k in mdn)  # the MDN learns
    rows = _rows(out / "log.csv")
    # stages: the MDN has no training terms in the VAE epoch and the VAE none after
    assert rows[0]["train_mdn_total"] == "" and float(rows[0]["train_vae_total"]) > 0
    assert float(rows[1]["train_mdn_total"]) > 0 and rows[1]["train_vae_total"] == ""
    assert float(e1["pca_var"][0]) >= float(e1["pca_var"][-1]) > 0  # statistics stored
    ck = load_checkpoint(out / "last.pt")
    vae, mdn = ck["optimizers"]  # each Adam counted only its own stage's steps
    assert int(vae["state"][0]["step"]) == 2 and int(mdn["state"][0]["step"]) == 2


def test_deshpande2017_first_mdn_update_is_a_fresh_adams(tmp_path):
    """The MDN's Adam is never stepped during the VAE stage (it used to be, with zero
    gradients at lr 0, spending its bias correction): its first real update equals that of
    a fresh Adam on the same gradient."""
    from psc_eval.baselines import deshpande2017 as d
    from psc_eval.baselines.deshpande2017 import DeshpandeMethod

    from psc_eval.data import get_dataset
    from psc_eval.training import Trainer, load_config

    cfg = tmp_path / "tiny.toml"  # no dropout: the two forwards must see the same network
    cfg.write_text(TINY_DESHPANDE.replace("vae_epochs = 1", "vae_epochs = 1\nmdn_dropout = 0.0"))

    conf = load_config(str(cfg), d.METHOD.configs, d.DeshpandeModelConfig)
    ds = torch.utils.data.Subset(get_dataset("toy", split="train", size=16), range(8))
    torch.manual_seed(0)
    method = DeshpandeMethod.build("deshpande2017", conf, ds)
    trainer = Trainer(method, conf.train, ds, None, tmp_path / "run", config=conf.to_dict(),
                      progress=False)
    trainer.fit(stop_after_steps=2)  # the VAE epoch: 2 steps
    assert trainer.step == 2 and not trainer.optims[1].optimizer.state
    net = method.model
    before = {n: p.detach().clone() for n, p in net.mdn.named_parameters()}
    # the gradient of the MDN's first step, and a fresh Adam's update from it
    batch = trainer.collate_fn([ds[i] for i in trainer_order(trainer)])
    shadow = copy_for_grad(net)
    from psc_eval.training.data import step_generator

    method.active_optimizers(2, 1)
    shadow.train()
    terms = method.training_step(shadow, batch, opt_index=1,
                                 generator=step_generator(conf.train.seed, 2))
    terms["total"].backward()
    fresh = torch.optim.Adam(shadow.mdn.parameters(), lr=conf.train.lr,
                             betas=tuple(conf.train.betas), eps=conf.train.adam_eps)
    fresh.step()
    trainer.fit(resume="last", stop_after_steps=3)  # the MDN's first real step
    for n, p in net.mdn.named_parameters():
        want = dict(shadow.mdn.named_parameters())[n].detach() - before[n]
        got = p.detach() - before[n]
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-7), n
    assert int(trainer.optims[1].optimizer.state[next(iter(net.mdn.parameters()))]["step"]) == 1


def trainer_order(trainer) -> list[int]:
    """The indices of the batch the trainer's next step reads (epoch order, position)."""
    from psc_eval.training.data import epoch_order

    bs = trainer.cfg.batch_size
    order = epoch_order(len(trainer.dataset), trainer.cfg.seed, trainer.epoch)
    return order[trainer.running.pos * bs:(trainer.running.pos + 1) * bs].tolist()


def copy_for_grad(net):
    import copy

    return copy.deepcopy(net)
