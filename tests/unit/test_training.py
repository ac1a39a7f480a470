"""The core training loop: bit-identical resume (per epoch and mid-epoch), Polyak averaging,
NaN stop, refusals, CSV, several optimisers per step."""

from __future__ import annotations

import csv

import pytest
import torch
from fixtures_data import tiny_toml
from torch import nn

from psc_eval.checkpoint import load_checkpoint
from psc_eval.errors import ConfigError, PscError, WeightsError
from psc_eval.io import sha256_file
from psc_eval.training import (
    MemoryCache,
    Optim,
    TrainConfig,
    Trainer,
    TrainMethod,
    epoch_order,
    step_generator,
    train,
)

TINY_TOML = tiny_toml(generator_dropout=0.5, epochs=2, batch_size=4, n_train=8, n_val=4,
                      polyak=0.9)


@pytest.fixture
def tiny_cfg(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY_TOML)
    return str(p)


def _states_equal(a, b):
    for k in ("model", "ema"):
        assert a[k].keys() == b[k].keys()
        for n in a[k]:
            assert torch.equal(a[k][n], b[k][n]), f"{k}.{n} differs"
    oa, ob = a["optimizers"][0]["state"], b["optimizers"][0]["state"]
    assert oa.keys() == ob.keys()
    for i in oa:
        for n in oa[i]:
            assert torch.equal(torch.as_tensor(oa[i][n]), torch.as_tensor(ob[i][n]))
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def test_resume_is_bit_identical_and_refusals(tmp_path, tiny_cfg):
    kw = {"config": tiny_cfg, "progress": False}
    full = train("ours", "toy", out_dir=tmp_path / "full", **kw)
    assert [r["epoch"] for r in full.history] == [1, 2]
    # interrupted after epoch 1, resumed from its epoch-1 checkpoint
    train("ours", "toy", out_dir=tmp_path / "half", epochs=1, **kw)
    ck1 = tmp_path / "half" / "epoch-0001.pt"
    train("ours", "toy", out_dir=tmp_path / "half", resume=str(ck1), **kw)
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "half" / "last.pt")
    assert a["step"] == b["step"] == 4 and a["epoch"] == b["epoch"] == 2
    _states_equal(a, b)
    assert a["history"][1]["val_L_gen_bpd"] == b["history"][1]["val_L_gen_bpd"]
    # CSV: one row per epoch with each loss term, training and validation
    rows = list(csv.DictReader((tmp_path / "half" / "log.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for col in ("train_L_emb_bpd", "train_L_seg", "train_L_gen_bpd", "val_L_gen_bpd",
                "val_L_seg", "val_total"):
        assert float(rows[1][col]) == pytest.approx(b["history"][1][col])
    assert a["variant"] == "ours" and a["num_classes"] == 10 and a["kind"] == "colorizer"
    assert a["config"]["model"]["fusion"] == "concat"

    last = tmp_path / "full" / "last.pt"
    before = sha256_file(last)
    with pytest.raises(ConfigError, match=r"changed config \(train.lr\)"):
        train("ours", "toy", out_dir=tmp_path / "full", resume="last", lr=0.5, **kw)
    with pytest.raises(WeightsError, match="variant='ours'"):
        train("psc-film", "toy", out_dir=tmp_path / "film", resume=str(last), **kw)
    with pytest.raises(ConfigError, match="already exist"):
        train("ours", "toy", out_dir=tmp_path / "full", **kw)
    assert sha256_file(last) == before
    assert not (tmp_path / "film").exists()
    # more epochs is a valid resume
    more = train("ours", "toy", out_dir=tmp_path / "full", resume="last", epochs=3, **kw)
    assert [r["epoch"] for r in more.history] == [1, 2, 3]


class _Quad(nn.Module):
    """A one-parameter model whose loss turns NaN at a chosen step."""

    def __init__(self, nan_at: int | None = None):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([2.0]))
        self.nan_at = nan_at
        self.calls = 0

    def forward(self, batch):
        self.calls += 1 if self.training else 0
        loss = (self.w**2).sum() * batch["L"].mean() / batch["L"].mean()
        if self.training and self.calls == self.nan_at:
            loss = loss * float("nan")
        return {"L_q": loss, "total": loss}


class _DS(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"id": str(i), "rgb": torch.full((3, 2, 2), 0.5), "L": torch.full((1, 2, 2), 50.0),
                "ab": torch.zeros(2, 2, 2), "mask": torch.zeros(2, 2, dtype=torch.int64),
                "skip": None}


class _QuadMethod(TrainMethod):
    kind = "quad"

    def __init__(self, model, lr=0.1, betas=(0.9, 0.999)):
        self.model, self.lr, self.betas = model, lr, betas

    def configure_optimizers(self, total_steps):
        return [Optim("adam", torch.optim.Adam(self.model.parameters(), lr=self.lr,
                                               betas=self.betas))]

    def training_step(self, model, batch, *, opt_index, generator):
        return model(batch)


def test_nan_loss_stops_with_step_terms_and_checkpoint(tmp_path):
    loop = TrainConfig(epochs=3, batch_size=2, polyak=0.9995, device="cpu")
    tr = Trainer(_QuadMethod(_Quad(nan_at=3)), loop, _DS(4), None, tmp_path, config={"x": 1},
                 meta={"variant": "q"}, progress=False)
    with pytest.raises(PscError) as e:
        tr.fit()
    msg = str(e.value)
    assert "step 2 (epoch 2)" in msg and "L_q=nan" in msg and "total=nan" in msg
    assert str(tmp_path / "last.pt") in msg and "--resume" in msg
    assert (tmp_path / "epoch-0001.pt").is_file() and not (tmp_path / "epoch-0002.pt").exists()


def test_polyak_average_with_warmup(tmp_path):
    loop = TrainConfig(epochs=1, batch_size=1, polyak=0.9995, device="cpu")
    model = _Quad()
    tr = Trainer(_QuadMethod(model), loop, _DS(3), None, tmp_path, config={}, progress=False)
    w0 = 2.0
    ws, ema = [], w0
    # replay Adam by hand on loss w^2 and the EMA with d = min(decay, (1+t)/(10+t))
    m = v = 0.0
    w = w0
    for t in range(1, 4):
        grad = 2 * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w = w - 0.1 * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)) ** 0.5 + 1e-8)
        d = min(0.9995, t / (9.0 + t))
        ema = d * ema + (1 - d) * w
        ws.append(w)
    tr.fit()
    assert float(model.w.detach()) == pytest.approx(ws[-1], rel=1e-6)
    assert float(tr.ema.w) == pytest.approx(ema, rel=1e-6)


class _TwoPlayers(TrainMethod):
    """Two optimisers on two parameters, as a GAN alternates D and G: the step for
    optimiser i returns only player i's loss, with an augmentation draw from the generator."""

    kind = "two"

    def __init__(self):
        self.model = nn.ParameterDict({"d": nn.Parameter(torch.tensor([1.0])),
                                       "g": nn.Parameter(torch.tensor([-1.0]))})
        self.draws = []

    def configure_optimizers(self, total_steps):
        sgd = torch.optim.SGD([self.model["d"]], lr=0.1)
        adadelta = torch.optim.Adadelta([self.model["g"]], lr=1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(sgd, lambda s: 0.5**s)
        return [Optim("d", sgd, sched), Optim("g", adadelta)]

    def training_step(self, model, batch, *, opt_index, generator):
        noise = torch.rand(1, generator=generator)
        self.draws.append(float(noise))
        p = model["d"] if opt_index == 0 else model["g"]
        loss = ((p - noise) ** 2).sum()
        return {"loss": loss, "total": loss}


def _two_players(tmp_path, **kw):
    m = _TwoPlayers()
    loop = TrainConfig(epochs=2, batch_size=1, device="cpu", **kw)
    return m, Trainer(m, loop, _DS(3), None, tmp_path, config={}, progress=False)


def test_several_optimisers_mid_epoch_resume_and_schedules(tmp_path):
    m, tr = _two_players(tmp_path / "full")
    res = tr.fit()
    assert res.complete and tr.step == 6
    # 12 step calls: each batch calls the D step then the G step; both draw from the
    # step's generator, a pure function of (seed, step)
    assert len(m.draws) == 12
    g = step_generator(0, 1)
    assert m.draws[2:4] == [float(torch.rand(1, generator=g)) for _ in range(2)]
    # SGD by hand with the halving schedule: d <- d - lr_k * 2 (d - noise_k)
    d = 1.0
    for k, noise in enumerate(m.draws[0::2]):
        d = d - 0.1 * 0.5**k * 2 * (d - noise)
    assert float(tr.model["d"].detach()) == pytest.approx(d, rel=1e-6)
    assert set(res.history[0]) >= {"train_d_loss", "train_g_loss", "train_d_total"}

    # interrupted mid-epoch 1 (after step 2 of 3) and resumed from last.pt
    m2, part = _two_players(tmp_path / "half", checkpoint_every=100)
    assert not part.fit(stop_after_steps=2).complete
    ck = load_checkpoint(tmp_path / "half" / "last.pt")
    assert ck["step"] == 2 and ck["epoch"] == 0 and ck["running"]["pos"] == 2
    m3, rest = _two_players(tmp_path / "half", checkpoint_every=100)
    rest.fit(resume="auto")
    assert m2.draws + m3.draws == m.draws
    a, b = tr.model.state_dict(), rest.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rest.history == [
        {**row, "epoch_s": r2["epoch_s"]} for row, r2 in zip(res.history, rest.history)
    ]
    with pytest.raises(WeightsError, match="kind 'two' is not 'quad'"):
        Trainer(_QuadMethod(_Quad()), TrainConfig(device="cpu"), _DS(2), None,
                tmp_path / "half", config={}, progress=False).fit(resume="auto")


def test_epoch_order_and_memory_cache():
    a, b = epoch_order(50, 3, 1), epoch_order(50, 3, 1)
    assert torch.equal(a, b) and not torch.equal(a, epoch_order(50, 3, 2))
    assert sorted(a.tolist()) == list(range(50))
    from psc_eval.data import get_dataset

    ds = get_dataset("toy", split="train", size=16)
    cache = MemoryCache(ds)
    for i in (0, 0, 1):
        s, ref = cache[i], ds[i]
        for k in ("rgb", "L", "ab", "mask"):
            assert s[k].dtype == ref[k].dtype and torch.equal(s[k], ref[k])


def test_resume_falls_back_to_the_newest_complete_checkpoint(tmp_path, capsys):
    _, tr = _two_players(tmp_path / "full")
    tr.fit()
    _, part = _two_players(tmp_path / "run")
    part.fit(stop_after_steps=3)  # epoch 1 done: epoch-0001.pt and last.pt
    run = tmp_path / "run"
    # killed between writing epoch-0001.pt and last.pt of a first epoch: no last.pt
    (run / "last.pt").unlink()
    _, again = _two_players(run)
    again.fit(resume="last")
    assert "last.pt is missing; resuming from" in capsys.readouterr().out
    a, b = tr.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a damaged last.pt (truncated by a crash of the disk, say) falls back as well
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])
    _, more = _two_players(run)
    more.fit(resume="last")
    assert "last.pt is damaged; resuming from" in capsys.readouterr().out
    # nothing at all to resume: one clear error
    with pytest.raises(WeightsError, match="no checkpoint to resume"):
        _two_players(tmp_path / "empty")[1].fit(resume="last")


class _BNNet(nn.Module):
    """A linear layer, a batch norm and a constant float buffer (copied, never averaged)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 2)
        self.bn = nn.BatchNorm1d(2)
        self.register_buffer("const", torch.tensor([3.0]))

    def forward(self, batch):
        x = batch["L"].reshape(len(batch["L"]), -1)[:, :1] / 50.0 + batch["ab"].sum()
        y = self.bn(self.lin(x * torch.arange(1, len(x) + 1.0)[:, None]))
        if self.training:
            self.const.add_(1.0)  # a buffer the step changes: the average must copy it
        loss = (y ** 2).mean()
        return {"total": loss}


def test_polyak_averages_norm_statistics_and_copies_other_buffers(tmp_path):
    """Batch-norm running statistics are averaged with the weights' recurrence (by hand
    from the live model's statistics after each step), counters and other buffers copied."""
    from psc_eval.training.loop import ema_buffer_pairs

    torch.manual_seed(0)
    model = _BNNet()
    loop = TrainConfig(epochs=1, batch_size=2, polyak=0.999, device="cpu")
    tr = Trainer(_QuadMethod(model), loop, _DS(8), None, tmp_path, config={}, progress=False)
    kinds = {n: a for (n, _), (_, _, a) in zip(
        [(n, b) for n, b in model.named_buffers()], ema_buffer_pairs(tr.ema, model))}
    assert kinds == {"const": False, "bn.running_mean": True, "bn.running_var": True,
                     "bn.num_batches_tracked": False}
    mean = model.bn.running_mean.clone()
    seen = []
    orig = tr._update_ema

    def spy():
        seen.append(model.bn.running_mean.clone())
        orig()

    tr._update_ema = spy
    tr.fit()
    for t, live in enumerate(seen):
        d = min(0.999, (1.0 + t) / (10.0 + t))
        mean = d * mean + (1 - d) * live
    assert len(seen) == 4
    torch.testing.assert_close(tr.ema.bn.running_mean, mean, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(tr.ema.bn.running_mean, model.bn.running_mean)
    assert int(tr.ema.bn.num_batches_tracked) == int(model.bn.num_batches_tracked) == 4
    assert float(tr.ema.const) == float(model.const) == 7.0
