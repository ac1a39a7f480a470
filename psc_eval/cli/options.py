"""Options shared by several commands: the dataset options, the comma-list reader, the
evaluation options (generated from ``EvalConfig``) and the training options (generated
from the core ``TrainConfig``)."""

from __future__ import annotations

from collections.abc import Iterable

import click


def comma_list(values: Iterable[str]) -> list[str]:
    """A repeatable option whose values may be comma lists -> the names, in order."""
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """Repeated ``NAME=VALUE`` options -> {name: value}."""
    from ..errors import PscError

    out = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise PscError(f"{option} expects NAME=VALUE, got {v!r}, in the options, e.g. "
                           f"{option} sepia=\"Sepia (ours)\"")
        out[name.strip()] = value.strip()
    return out


def prediction_rows(values: Iterable[str]) -> list:
    """``--predictions DIR`` or ``--predictions NAME=DIR`` -> PredictionsColorizer rows (the
    name is the row's name in results, summaries and the report; default
    ``predictions-<folder>``). A value that is an existing folder is always a folder."""
    from pathlib import Path

    from ..predictions import PredictionsColorizer

    rows = []
    for v in values:
        name, sep, folder = v.partition("=")
        if not sep or Path(v).is_dir() or not name.strip():
            rows.append(PredictionsColorizer(v))
        else:
            rows.append(PredictionsColorizer(folder, name=name.strip()))
    return rows


def dataset_options(default_split: str | None = None):
    """--dataset/--root/--split/--size/--allow-partial, shared by every command that reads data."""

    def deco(f):
        f = click.option("--allow-partial", is_flag=True,
                         help="Accept a split whose image count differs from the official one.")(f)
        f = click.option("--size", default=None, type=int,
                         help="Square input size; default 128 (real data), 64 (toy).")(f)
        f = click.option("--split", default=default_split,
                         help="Split as named on disk (default: the dataset's evaluation split).")(f)
        f = click.option("--root", default=None, type=click.Path(file_okay=False),
                         help="Dataset folder (VOCdevkit, COCO-stuff root, image folder).")(f)
        f = click.option("--dataset", default="toy", show_default=True,
                         help="Dataset name (psc-eval ls).")(f)
        return f

    return deco


def train_options(which: str = "method"):
    """One option per field of the training config marked ``cli`` (the core TrainConfig of
    psc_eval.training.config; for ``judge`` its JudgeTrainConfig), None meaning the
    config's value, as the evaluation options are generated from EvalConfig."""
    from ..training.config import TrainConfig, cli_fields

    if which == "judge":
        from ..judge.train import JudgeTrainConfig as cls
    else:
        cls = TrainConfig
    opts = []
    for f in cli_fields(cls):
        meta = f.metadata
        shown = "the config's" if which == "method" else repr(f.default)
        kw: dict = {"default": None, "help": f"{meta['help']} (default: {shown})"}
        if "choices" in meta:
            kw["type"] = click.Choice(list(meta["choices"]))
        elif f.type in (int, "int"):
            kw["type"] = int  # ranges are the config's checks: one line naming the key
        elif f.type in (float, "float"):
            kw["type"] = float
        opts.append(click.option("--" + f.name.replace("_", "-"), f.name, **kw))

    def deco(fn):
        for o in reversed(opts):
            fn = o(fn)
        return fn

    return deco


def open_dataset(dataset: str, root, split, size: int, allow_partial: bool, **kw):
    from ..data import get_dataset

    return get_dataset(dataset, root=root, split=split, size=size, allow_partial=allow_partial, **kw)


def runner_options(kind: str):
    """The options of ``psc-eval <kind>``: --colorizer plus one option per field of
    ``psc_eval.config.EvalConfig`` (names, defaults and help are read from there)."""
    from ..config import cli_default, eval_fields

    def option(f):
        meta = f.metadata
        decl = meta.get("cli") or "--" + f.name.replace("_", "-")
        default = cli_default(f, kind)
        kw = {"default": default, "help": meta["help"], "show_default": default is not None}
        if "choices" in meta:
            kw["type"] = click.Choice(list(meta["choices"]))
        elif "path" in meta:
            kw["type"] = click.Path(file_okay=meta["path"] != "dir", dir_okay=meta["path"] != "file")
        elif "min" in meta or "max" in meta:
            kw["type"] = click.IntRange(meta.get("min"), meta.get("max"))
        elif "type" in meta:
            kw["type"] = meta["type"]
        if isinstance(default, bool) and "/" not in decl:
            kw["is_flag"] = True
            kw["show_default"] = False
        return click.option(decl, f.name, **kw)

    def deco(fn):
        opts = [click.option("--colorizer", "colorizer", multiple=True,
                             help="Colorizer name (psc-eval ls) or module:attr; repeat the "
                                  "option or give a comma list for several rows."),
                click.option("--predictions", "predictions", multiple=True,
                             type=click.Path(file_okay=False),
                             help="Folder of colorized images saved by any tool, <id>.png "
                                  "per image: scored as one more row (repeatable); "
                                  "NAME=DIR names the row.")]
        opts += [option(f) for f in eval_fields(kind)]
        for o in reversed(opts):
            fn = o(fn)
        return fn

    return deco


