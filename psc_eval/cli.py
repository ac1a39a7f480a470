"""The ``psc-eval`` command line: thin. Each command parses options and calls one function.

Errors a user can cause arrive as ``PscError`` and are printed on one line
(``psc-eval: error: ...``) with exit status 2; click's own usage errors keep click's format.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .dist import DEVICE_HELP
from .errors import PscError


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                                "max_content_width": 100})
@click.version_option(__version__, prog_name="psc-eval")
def cli() -> None:
    """Pixelated Semantic Colorization: models, baselines and the paper's evaluation."""


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
    from .training.config import TrainConfig, cli_fields

    if which == "judge":
        from .judge.train import JudgeTrainConfig as cls
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
            kw["type"] = click.IntRange(meta["min"]) if "min" in meta else int
        elif f.type in (float, "float"):
            kw["type"] = float
        opts.append(click.option("--" + f.name.replace("_", "-"), f.name, **kw))

    def deco(fn):
        for o in reversed(opts):
            fn = o(fn)
        return fn

    return deco


def open_dataset(dataset: str, root, split, size: int, allow_partial: bool, **kw):
    from .data import get_dataset

    return get_dataset(dataset, root=root, split=split, size=size, allow_partial=allow_partial, **kw)


@cli.command("ls", short_help="List the registries: colorizers, methods, judges, datasets, scorers.")
def ls_cmd() -> None:
    """List every registry: colorizers, trainable methods, segmenters, datasets, scorers."""
    import importlib

    # (heading, module, its psc_eval.registry.Registry); listing imports no model code
    registries = (
        ("colorizers", "psc_eval.colorizer", "COLORIZERS"),
        ("trainable colorizers (psc-eval train)", "psc_eval.training.entry", "TRAINABLE"),
        ("segmenters", "psc_eval.judge.registry", "SEGMENTERS"),
        ("datasets", "psc_eval.data", "DATASETS"),
        ("scorers", "psc_eval.metrics", "SCORERS"),
    )
    for heading, module, attr in registries:
        registry = getattr(importlib.import_module(module), attr, None)
        if registry is None:  # a registry not (yet) in this tree
            continue
        entries = registry.list()
        click.echo(f"{heading}:")
        width = max((len(k) for k in entries), default=0) + 2
        for k, v in entries.items():
            click.echo(f"  {k:<{width}}{v}".rstrip())


@cli.group("data")
def data_group() -> None:
    """Inspect datasets."""


@data_group.command("preview", short_help="Preview grid: colour, gray and segmentation map.")
@dataset_options()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--n", "n_rows", default=6, show_default=True, type=click.IntRange(1, 64))
def data_preview(dataset, root, split, size, allow_partial, out, n_rows) -> None:
    """Write a Fig. 3-style grid: colour, gray and segmentation map with a class legend."""
    from .data.preview import write_preview

    ds = open_dataset(dataset, root, split, size, allow_partial)
    path = write_preview(ds, out, n=n_rows)
    click.echo(f"wrote {path}")


# --- judge commands (train-judge): psc_eval.judge ---


@cli.command("train-judge", short_help="Train a judge segmenter on colour images.")
@click.option("--dataset", default="toy", show_default=True, help="toy, voc or cocostuff.")
@click.option("--arch", default=None, help="Segmenter name (psc-eval ls); default: the dataset's judge.")
@click.option("--root", default=None, type=click.Path(file_okay=False), help="Dataset folder.")
@click.option("--split", default=None,
              help="Training split (default: train_aug for voc, train otherwise).")
@click.option("--val-split", default=None,
              help="Validation split (default: the dataset's evaluation split).")
@click.option("--size", default=None, type=int, help="Square input size (default: the dataset's).")
@train_options("judge")
@click.option("--threads", default=None, type=click.IntRange(1),
              help="torch CPU threads (default: torch's choice).")
@click.option("--out", "--weights", "out", default=None, type=click.Path(dir_okay=False),
              help="Weights file (default $PSC_HOME/judges/<dataset>/<arch>.pt).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from the per-epoch checkpoint next to the weights.")
def train_judge_cmd(dataset, arch, **kw) -> None:
    """Train a judge segmenter on colour images; prints val mIoU on colour and gray inputs."""
    from .judge import train_judge

    s = train_judge(dataset, arch, **kw)
    click.echo(f"{s['arch']} on {dataset} {s['val_split']} ({s['val_images']} images): "
               f"mIoU colour {s['val_miou_color']:.4f}, gray {s['val_miou_gray']:.4f} "
               f"({s['wall_s'] / 60:.1f} min)")
    click.echo(f"wrote {s['weights']} (sha256 {s['weights_sha256'][:12]}...)")

# --- runner commands (miou, psnr): psc_eval.runner ---


def runner_options(kind: str):
    """The options of ``psc-eval <kind>``: --colorizer plus one option per field of
    ``psc_eval.config.EvalConfig`` (names, defaults and help are read from there)."""
    from .config import cli_default, eval_fields

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
                                  "per image: scored as one more row (repeatable).")]
        opts += [option(f) for f in eval_fields(kind)]
        for o in reversed(opts):
            fn = o(fn)
        return fn

    return deco


def _run_eval_cmd(kind: str, colorizer: tuple[str, ...], predictions: tuple[str, ...],
                  **options) -> None:
    from .colorizer import PredictionsColorizer
    from .dist import dist_info
    from .runner import run_eval

    rows: list = [n.strip() for c in colorizer for n in c.split(",") if n.strip()]
    rows += [PredictionsColorizer(d) for d in predictions]
    if not rows:
        raise PscError(f"nothing to score, in psc-eval {kind}, pass --colorizer NAME or "
                       "--predictions DIR")
    summary = run_eval(kind, rows, **options)
    if dist_info().is_main:
        click.echo(summary.text())


@cli.command("miou", short_help="mIoU of the judge on colorized images (Table 3, Fig. 8).")
@runner_options("miou")
def miou_cmd(colorizer, predictions, **options) -> None:
    """Mean IoU of a judge on colorized images (Table 3, Fig. 8): gray / colorizer / colour."""
    _run_eval_cmd("miou", colorizer, predictions, **options)


@cli.command("psnr", short_help="PSNR against the true colours (Table 3); no masks needed.")
@runner_options("psnr")
def psnr_cmd(colorizer, predictions, **options) -> None:
    """PSNR of colorized images against the true colours (Table 3); needs no masks."""
    _run_eval_cmd("psnr", colorizer, predictions, **options)


@cli.command("diversity", short_help="MS-SSIM of two samples per input (Fig. 10).")
@runner_options("diversity")
def diversity_cmd(colorizer, predictions, **options) -> None:
    """Sample diversity of a stochastic colorizer (Fig. 10): MS-SSIM between two samples of
    each gray input; histogram in the run JSON, a figure of example pairs under OUT/figures."""
    from .colorizer import PredictionsColorizer
    from .dist import dist_info
    from .experiments.diversity import run_diversity

    rows: list = [n.strip() for c in colorizer for n in c.split(",") if n.strip()]
    rows += [PredictionsColorizer(d) for d in predictions]
    if not rows:
        raise PscError("diversity needs a stochastic colorizer, in --colorizer, name one "
                       "(or --predictions DIR holding <id>_0.png and <id>_1.png)")
    for row in rows:
        summary = run_diversity(row, **options)
        if dist_info().is_main:
            click.echo(summary.text())


@cli.command("compare", short_help="Paired difference of two runs, interval and p-value.")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--resamples", default=10000, show_default=True, type=click.IntRange(100),
              help="Bootstrap resamples and permutations.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_cmd(a, b, resamples, seed, as_json) -> None:
    """A - B for two run JSONs of the same images (mIoU, PSNR): paired bootstrap 95%
    interval and sign-flip permutation p-value."""
    import json

    from .report.confidence import compare_runs, format_comparison

    c = compare_runs(a, b, resamples=resamples, seed=seed)
    click.echo(json.dumps(c, indent=1) if as_json else format_comparison(c))


# --- model commands (train, sample): psc_eval.models ---


class TrainCommand(click.Command):
    """``train --help`` lists every trainable method of the records (read only then)."""

    def format_help_text(self, ctx, formatter) -> None:
        from .training.entry import TRAINABLE

        super().format_help_text(ctx, formatter)
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text("Trainable methods: " + ", ".join(TRAINABLE) + ".")


@cli.command("train", cls=TrainCommand,
             short_help="Train the paper's model, an ablation or a baseline.")
@click.option("--colorizer", required=True,
              help="Method to train (psc-eval ls lists the trainable ones).")
@click.option("--dataset", default="toy", show_default=True, help="toy, voc or cocostuff.")
@click.option("--config", "config", default="toy", show_default=True,
              help="A config the method declares (toy, paper) or a path to a .toml file.")
@click.option("--root", default=None, type=click.Path(file_okay=False), help="Dataset folder.")
@click.option("--size", default=None, type=int, help="Input size (config: 128 paper, 64 toy).")
@train_options()
@click.option("--resume", is_flag=False, flag_value="last", default=None,
              help="Continue from last.pt of the run folder, or from the checkpoint given.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Checkpoint folder (default $PSC_HOME/models/<dataset>/<colorizer>).")
def train_cmd(colorizer, dataset, config, **kw) -> None:
    """Train a colorizer: the paper's model, an ablation or a baseline, on the one core loop
    (torchrun: several GPUs)."""
    from .training.entry import train

    res = train(colorizer, dataset, config, **kw)
    click.echo(f"trained {colorizer} on {dataset} in {res.wall_s:.0f} s, checkpoint {res.last}")


@cli.command("seg-curves", short_help="Fig. 9: segmentation loss, scratch / pretrained / joint.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--config", default="toy", show_default=True, help="toy, paper or a .toml path.")
@click.option("--epochs", default=None, type=click.IntRange(1),
              help="Epochs of each run (default: the config's).")
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="The result goes to OUT/experiments/<dataset>/.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def seg_curves_cmd(dataset, config, epochs, out, device) -> None:
    """Train the segmentation branch from scratch and from a pretrained colorizer (L_seg
    alone), read the joint run from the trained 'ours', and store the three validation
    loss curves (Fig. 9); psc-eval report draws them. Resumable."""
    from .dist import resolve_device
    from .experiments.segcurves import seg_curves

    path = seg_curves(dataset, config, out=out, epochs=epochs, device=resolve_device(device))
    click.echo(f"wrote {path}")


@cli.command("naturalness", short_help="Table 4 PROXY: a CNN critic's real-vs-colorized rate.")
@click.option("--colorizer", "colorizer", required=True, multiple=True,
              help="Methods to judge (repeat, or a comma list); gray and gt are added.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="The result goes to OUT/experiments/<dataset>/naturalness-proxy.json.")
@click.option("--limit", default=None, type=click.IntRange(1), help="Validation images.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def naturalness_cmd(colorizer, dataset, out, limit, seed, device) -> None:
    """Train one small CNN critic per method on held-out real images against that method's
    colorizations; report the fraction of its validation colorizations judged real (a
    labelled proxy for Table 4 until human observers answer)."""
    from .dist import resolve_device
    from .experiments.naturalness import naturalness_proxy

    names = [n.strip() for c in colorizer for n in c.split(",") if n.strip()]
    path = naturalness_proxy(names, dataset, out=out, seed=seed, device=resolve_device(device),
                             limit=limit)
    click.echo(f"wrote {path}")


@cli.command("sample", short_help="Labelled grid: gray input, samples of each method, truth.")
@click.option("--colorizer", "colorizer", required=True, multiple=True,
              help="Colorizer name or module:attr; repeat it (or a comma list) for one "
                   "column group per method; gray and gt work too.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--root", default=None, type=click.Path(file_okay=False))
@click.option("--split", default=None)
@click.option("--size", default=None, type=int)
@click.option("--n", "n", default=3, show_default=True, type=click.IntRange(1, 64),
              help="Samples per image of a stochastic colorizer.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--limit", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Images (grid rows).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--temperature", default=None, type=float,
              help="Sampling temperature (default: the colorizer's own).")
@click.option("--sampler", default=None, type=click.Choice(["cached", "naive"]),
              help="Sampler of the paper's model (default: cached).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--weights", default=None, type=click.Path(dir_okay=False),
              help="Checkpoint (default: the one trained under $PSC_HOME, else the shipped one).")
def sample_cmd(colorizer, dataset, root, split, size, n, out, limit, seed, temperature,
               sampler, device, weights) -> None:
    """Write a labelled PNG grid: gray input, each method's samples, ground truth."""
    from .dist import resolve_device
    from .report.grid import write_sample_grid

    names = [x.strip() for c in colorizer for x in c.split(",") if x.strip()]
    options = {k: v for k, v in (("temperature", temperature), ("sampler", sampler))
               if v is not None}
    path = write_sample_grid(names, dataset, out, n=n, limit=limit, seed=seed,
                             device=resolve_device(device), root=root, split=split,
                             size=size, weights=weights, options=options)
    click.echo(f"wrote {path}")

# --- study commands (study create/serve/tally): psc_eval.study ---


@cli.group("study", short_help="Human naturalness study (Table 4): create, serve, tally.")
def study_group() -> None:
    """Human naturalness study (Table 4): create stimuli, serve them, tally the answers."""


def _parse_weights(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for it in items:
        method, sep, path = it.partition("=")
        if not sep or not method or not path:
            raise PscError(f"--weights expects METHOD=PATH, got {it!r}, in the options, "
                           "e.g. --weights ours=model.pt")
        out[method] = path
    return out


@study_group.command("create", short_help="Pick images, render the stimuli, write the manifest.")
@dataset_options()
@click.option("--methods", required=True, help="Comma-separated colorizers, e.g. gray,gt,ours.")
@click.option("--images", "n_images", default=20, show_default=True, type=int,
              help="Test images; every method colorizes each of them.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Study folder.")
@click.option("--display-size", default=256, show_default=True, type=int,
              help="Pixels per side at which observers see every image.")
@click.option("--vigilance", "n_vigilance", default=None, type=int,
              help="Catch trials (half real, half wrong colours); default max(4, 10%).")
@click.option("--weights", "weights", multiple=True, metavar="METHOD=PATH",
              help="Weights file for one method (repeatable).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def study_create(dataset, root, split, size, allow_partial, methods, n_images, seed, out,
                 display_size, n_vigilance, weights, device) -> None:
    """Pick images, render each method's colorization and the catch trials, write the manifest."""
    from .dist import resolve_device
    from .study import create_study

    ds = open_dataset(dataset, root, split, size, allow_partial)
    path = create_study(dataset, methods, n_images, seed, out, display_size=display_size,
                        n_vigilance=n_vigilance, weights=_parse_weights(weights),
                        device=resolve_device(device),
                        dataset_obj=ds)
    import json

    n = len(json.loads(path.read_text())["trials"])
    click.echo(f"wrote {path} ({n} trials per observer); serve it with "
               f"'psc-eval study serve {out}'")


@study_group.command("serve", short_help="Serve the observer page; answers go to responses.jsonl.")
@click.argument("study_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; 0.0.0.0 or a LAN IP lets colleagues connect.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--exposure-ms", default=None, type=int,
              help="Hide each image after this many milliseconds (default: no limit).")
def study_serve(study_dir, host, port, exposure_ms) -> None:
    """Serve the observer page until Ctrl-C; answers go to STUDY_DIR/responses.jsonl."""
    from .study import serve_study

    serve_study(study_dir, host=host, port=port, exposure_ms=exposure_ms, echo=click.echo)


@study_group.command("tally", short_help="Table 4: % judged natural per method, with intervals.")
@click.argument("study_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="JSON to write (default STUDY_DIR/tally.json).")
@click.option("--vigilance-threshold", default=0.75, show_default=True, type=float,
              help="Exclude observers below this fraction of correct catch trials.")
@click.option("--n-boot", default=2000, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
def study_tally(study_dir, out, vigilance_threshold, n_boot, seed) -> None:
    """Table 4: % judged natural per method, Wilson and two-way bootstrap 95% intervals."""
    from pathlib import Path

    from .study import TallyConfig, format_table, tally_study

    res = tally_study(study_dir, out, TallyConfig(vigilance_threshold, n_boot, seed))
    click.echo(format_table(res))
    click.echo(f"wrote {out or Path(study_dir) / 'tally.json'}")

# --- report commands (reproduce, report, regress) ---


@cli.command("report", short_help="Tables 3-4, ablation, Figs. 8 and 10 from stored runs.")
@click.option("--dataset", default="toy", show_default=True, help="toy, voc or cocostuff.")
@click.option("--runs", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="The --out folder of the evaluations (holds runs/<dataset>/...).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Report folder (default reports/<dataset>).")
@click.option("--models", default=None, type=click.Path(file_okay=False),
              help="Checkpoint folder for the ablation's losses (default $PSC_HOME).")
@click.option("--study", default=None, type=click.Path(exists=True),
              help="Human study folder (or its tally.json) for Table 4.")
@click.option("--split", default=None, help="Use only runs of this split.")
@click.option("--judge", default=None, help="Use only runs of this judge (segmenter name).")
@click.option("--samples", is_flag=True, help="Also draw sample grids (needs the models).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def report_cmd(dataset, runs, out, models, study, split, judge, samples, device) -> None:
    """Write Table 3, Table 4, the ablation table (Markdown, LaTeX, CSV) and Figs. 8 and 10
    (PNG, PDF) of one dataset, derived only from the stored run JSONs."""
    from .dist import resolve_device
    from .report.build import write_report

    click.echo(write_report(dataset, runs, out, models=models, study=study, split=split,
                            judge=judge, samples=samples,
                            device=resolve_device(device)).text())


@cli.command("reproduce", short_help="The whole toy benchmark: judge, models, metrics, report.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Run results go to OUT/runs/..., the report to OUT/<dataset>/.")
@click.option("--from-scratch", is_flag=True,
              help="Train the judge and every model under $PSC_HOME instead of using the "
                   "checkpoints shipped in the repository.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
def reproduce_cmd(dataset, out, from_scratch, device) -> None:
    """Judge, every model (shipped or trained), mIoU / PSNR / semantic / pollution of all
    rows, diversity, and the report; resumable: finished steps are skipped on a rerun."""
    from .dist import resolve_device
    from .experiments.reproduce import reproduce

    s = reproduce(dataset, out=out, from_scratch=from_scratch, device=resolve_device(device))
    click.echo(s.text())


@cli.command("regress", short_help="Re-score a fixed toy subset; exit 1 if a metric moved.")
@click.option("--expected", default=None, type=click.Path(dir_okay=False),
              help="Expected-metrics file (default reports/toy/expected.json).")
@click.option("--update", is_flag=True, help="Rewrite the expected values and show the diff.")
def regress_cmd(expected, update) -> None:
    """Re-evaluate the expected file's toy subset with the shipped checkpoints and compare
    every metric with its expected value under its stated tolerance (exit 1 on drift)."""
    from .experiments.regress import regress

    text, ok = regress(expected, update=update)
    click.echo(text)
    if not ok:
        sys.exit(1)


@cli.command("ship", short_help="Slim float16 copies of trained toy checkpoints + manifest.")
@click.option("--dataset", default="toy", show_default=True)
@click.option("--judge", default=None, help="Judge to ship (default: the dataset's).")
@click.option("--colorizer", "colorizers", multiple=True, required=True,
              help="Trained colorizer to ship (repeat, or a comma list).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder (default reports/<dataset>/checkpoints of this source tree).")
def ship_cmd(dataset, judge, colorizers, out) -> None:
    """Copy the judge and colorizers trained under $PSC_HOME into the repository as slim
    float16 checkpoints with a sha256 manifest (what a fresh clone's first run uses)."""
    from .judge import default_segmenter
    from .shipped import ship_trained

    names = [n.strip() for c in colorizers for n in c.split(",") if n.strip()]
    path = ship_trained(dataset, judge or default_segmenter(dataset), names, out)
    click.echo(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    from .dist import abort_run, dist_info, shutdown_distributed

    try:
        rc = cli.main(args=argv, prog_name="psc-eval", standalone_mode=False)
        shutdown_distributed()
    except PscError as e:
        if dist_info().enabled:  # end every rank now; the first to fail reports
            first, code = abort_run(e.exit_code)
            if first:
                click.echo(f"psc-eval: error: {e.one_line()}", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        click.echo(f"psc-eval: error: {e.one_line()}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("psc-eval: interrupted; finished work is kept, rerun the command to resume",
                   err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except Exception:
        if dist_info().enabled:  # a bug or a dead peer: print it once, end every rank
            first, code = abort_run(1)
            if first:
                import traceback

                traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
