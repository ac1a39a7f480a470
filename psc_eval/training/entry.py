"""THE training entry: ``psc-eval train --colorizer NAME`` for every trainable method.

The method record (``psc_eval.methods``) names the method's :class:`TrainMethod` class and
its config files; this entry reads the config (``psc_eval.training.config.load_config``),
opens the run's datasets, seeds, builds the method and runs the core loop into the run
folder (:func:`run_folder`, or ``out_dir``). Nothing here is specific to one method.

Run folders are keyed on the configuration: only a config the record names, trained as
it is, goes to ``$PSC_HOME/models/<dataset>/<name>/`` (where evaluation, ``reproduce`` and
``ship`` read the method); a run with any other value (``--epochs 1 --n-train 160``,
``--set``, a TOML path) goes to ``.../<name>/runs/<config>-<digest>/``, so it never
replaces the protocol's run or hides the shipped model, and the same configuration
resumes into the same folder.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..checkpoint import config_numbers
from ..colorizer import COLORIZERS
from ..errors import ConfigError, PscError
from ..identity import digest
from ..methods import all_methods, get_method
from ..paths import colorizer_dir, run_dir
from ..registry import Registry
from .config import Config, load_config
from .data import MemoryCache, open_train_val, seed_everything
from .loop import Trainer, TrainResult


def _trainable_entries():
    return [(m.name, m.trainable, m.description) for m in all_methods().values()
            if m.trainable is not None]


# name -> its TrainMethod class (or "module:attr"), from the method records
TRAINABLE = Registry("trainable colorizer", option="--colorizer", source=_trainable_entries)

# psc-eval train's options as config keys (the rest of TrainConfig is set in the TOML)
OPTION_KEYS = {"size": "model.input_size"}


def resolve_config(name: str, config: str = "toy", overrides: dict[str, Any] | None = None
                   ) -> tuple[Any, Config]:
    """(the method's TrainMethod class, its resolved config) for ``psc-eval train``."""
    cls = TRAINABLE.get(name)
    record = get_method(name)
    known = dict(record.configs) if record is not None else {}
    cfg = load_config(config, known, cls.model_config, cls.train_config, overrides,
                      cls.check_config)
    return cls, cfg


def _numbers(cfg: Config) -> dict[str, Any]:
    return config_numbers(cfg.to_dict())


def run_folder(name: str, dataset: str, config: str, cfg: Config) -> tuple[Path, bool]:
    """(the run folder of this configuration, whether it is the protocol's).

    The protocol's run: ``config`` is one the method's record names and ``cfg`` equals it
    resolved without any override (keys that move no number aside). Anything else is keyed
    on the config's name and a digest of its resolved values."""
    record = get_method(name)
    named = record is not None and config in record.configs
    if named:
        cls = TRAINABLE.get(name)
        protocol = load_config(config, dict(record.configs), cls.model_config,
                               cls.train_config, None, cls.check_config)
        if _numbers(protocol) == _numbers(cfg):
            return colorizer_dir(dataset, name), True
    stem = config if named else Path(config).stem
    return run_dir(dataset, name, f"{stem}-{digest(_numbers(cfg), 10)}"), False


def protocol_diff(name: str, dataset: str, config: Mapping[str, Any]) -> list[str]:
    """The config keys that move numbers in which a checkpoint's ``config`` differs from
    the protocol config of ``name`` on ``dataset`` (the config named after the dataset);
    [] when it is the protocol's, or when ``name`` has no such config. Keys the checkpoint
    does not have (added to the code after it was trained; its loader fills the default)
    are not counted."""
    from ..checkpoint import NOT_IN_RUN_KEY
    from .config import config_diff, flatten

    record = get_method(name)
    if name not in TRAINABLE or record is None or dataset not in record.configs:
        return []
    cls, cfg = resolve_config(name, dataset)
    from ..data import get_dataset

    cls.prepare(name, cfg, get_dataset(dataset, split="train"))  # as a training saves it
    proto = cfg.to_dict()
    has = set(flatten(config or {}))
    return [k for k in config_diff(config or {}, proto) if k not in NOT_IN_RUN_KEY
            and k in has]


def trainable_defaults(config: str = "toy") -> list[tuple[str, str]]:
    """(name, "configs ...; epochs E, batch B, lr L, ...") of every trainable, for
    ``train --help``: the values a plain ``--config toy`` run uses."""
    rows = []
    for name in TRAINABLE:
        record = get_method(name)
        names = ", ".join(record.configs) if record is not None and record.configs else "-"
        try:
            t = resolve_config(name, config)[1].train
            text = (f"configs {names}; {config}: epochs {t.epochs}, batch {t.batch_size}, "
                    f"lr {t.lr:g}, {t.optimizer}, seed {t.seed}, n_train {t.n_train or 'all'}")
        except PscError as e:  # help lists every method, one with a broken config too
            text = f"configs {names}; {config} config not readable: {e.one_line()[:60]}"
        rows.append((name, text))
    return rows


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items -> {"train.lr": 0.001, ...}; VALUE is read as a TOML value
    (``2``, ``1e-3``, ``true``, ``[1, 2]``, ``"adam"``; a bare word is a string)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or "." not in key:
            raise ConfigError(f"--set expects model.KEY=VALUE or train.KEY=VALUE, got "
                              f"{item!r}, in the options, e.g. --set train.lr=1e-3")
        try:
            out[key] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw.strip()
    return out


def train(name: str, dataset: str = "toy", config: str = "toy", *, root: str | None = None,
          resume: str | None = None, out_dir: str | Path | None = None, progress: bool = True,
          overrides: Mapping[str, Any] | None = None, stop_after_steps: int | None = None,
          tensorboard: bool = False, **options: Any) -> TrainResult:
    """Train method ``name`` on ``dataset`` with ``config`` (a name its record declares, or
    a TOML path). ``options``: ``size`` and the :class:`TrainConfig` fields the CLI
    exposes (None: the config's value); ``overrides``: any config key ({"model.KEY": v,
    "train.KEY": v}, ``--set``), recorded in the checkpoint like every config value;
    ``resume``: None, ``"last"`` or a checkpoint; ``stop_after_steps`` ends the run there
    with a checkpoint, as an interruption would (``complete`` is then False)."""
    overrides = dict(overrides or {})
    for k, v in options.items():
        key = OPTION_KEYS.get(k, f"train.{k}")
        if v is not None:
            overrides[key] = v
    if name in COLORIZERS and name not in TRAINABLE:
        raise ConfigError(f"{name!r} is not trainable, in --colorizer, train one of "
                          f"{', '.join(TRAINABLE)} (psc-eval ls)")
    cls, cfg = resolve_config(name, config, overrides)
    t = cfg.train
    out = Path(out_dir) if out_dir is not None else run_folder(name, dataset, config, cfg)[0]
    train_ds, val_ds = open_train_val(dataset, root, cls.input_size(cfg), t.train_split,
                                      t.val_split, t.n_train, t.n_val)
    cls.prepare(name, cfg, train_ds)
    seed_everything(t.seed)
    method = cls.build(name, cfg, train_ds)
    meta = {"variant": name, "dataset": dataset, "num_classes": train_ds.num_classes,
            "class_names": list(train_ds.class_names),
            "train_fingerprint": train_ds.fingerprint(), "val_fingerprint": val_ds.fingerprint()}
    if t.cache_in_memory and t.workers == 0:
        train_ds, val_ds = MemoryCache(train_ds), MemoryCache(val_ds)
    trainer = Trainer(method, t, train_ds, val_ds, out, config=cfg.to_dict(), meta=meta,
                      progress=progress, tensorboard=tensorboard)
    return trainer.fit(resume=resume if resume in (None, "last") else Path(resume),
                       stop_after_steps=stop_after_steps)
