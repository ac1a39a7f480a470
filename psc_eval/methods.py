"""Method records: one per method, declared beside its code, read by every registry.

A :class:`Method` says everything the harness needs to know about a method: the colorizer
class, the trainable method class (if it trains), its config files, its display label,
its group in Tables 3-4 and the paper's published numbers where the paper has them. The
colorizer and trainable registries (``psc_eval.colorizer.COLORIZERS``,
``psc_eval.training.TRAINABLE``), ``psc-eval ls``, ``train``, ``miou`` and ``report`` all
read the records; the core names no plug-in (as timm's models register themselves).

Records are found through the entry-point group ``psc_eval.methods`` (as pytest finds
its plugins): psc-eval's own methods are entry points of this distribution (its
pyproject.toml), and a research group's installed package adds rows to Tables 3-4 the
same way, without editing psc-eval::

    [project.entry-points."psc_eval.methods"]
    mymethod = "mypkg.method:METHOD"     # a Method, or a list of Methods

The order of the tables is one function, :func:`table_order`: gray, the single-output
baselines, other methods (by name), the diverse baselines, the paper's model, the colour
ground truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .errors import UnknownNameError
from .registry import import_attr

ENTRY_POINT_GROUP = "psc_eval.methods"
DIST_NAME = "psc-eval"

# Groups, in table order. reference: gray (first) and gt (last); paper: the paper's model.
GROUPS = ("reference", "single", "own", "diverse", "ablation", "paper")


@dataclass(frozen=True)
class Method:
    """One method: what builds it, trains it and shows it.

    ``colorizer`` / ``trainable``: a class or its ``"module:attr"`` path (imported when
    used). ``configs``: config name -> TOML file (``psc-eval train --config NAME``).
    ``paper_table3``: (mIoU %, PSNR dB) as published; ``paper_table4``: % judged natural.
    The ablation table (Sec. 3) shows the records of group ``ablation`` and those with an
    ``ablation_label`` (the paper's model), in record order.
    """

    name: str
    colorizer: Any
    description: str = ""
    trainable: Any = None
    configs: Mapping[str, str] = field(default_factory=dict)
    label: str = ""
    group: str = "own"
    ablation_label: str = ""
    paper_table3: tuple[float | None, float | None] | None = None
    paper_table4: float | None = None
    # the method's decoding or sampling knob as evaluated, and where its value comes from
    # (the reference's, or selected on held-out TRAINING images); "" when it has none
    decoding: str = ""

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise UnknownNameError(
                f"method {self.name!r} has group {self.group!r}, in its Method record, "
                f"use one of {', '.join(GROUPS)}")

    @property
    def display(self) -> str:
        return self.label or self.name

    def colorizer_class(self) -> Any:
        c = self.colorizer
        return import_attr(c, "colorizer") if isinstance(c, str) else c

    def trainable_class(self) -> Any:
        t = self.trainable
        return import_attr(t, "trainable method") if isinstance(t, str) else t


def config_files(folder: str | Path, prefix: str = "") -> dict[str, str]:
    """The TOML configs of a method: ``folder/<prefix><name>.toml`` -> {name: path}."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent / "configs"
    return {p.stem[len(prefix):]: str(p) for p in sorted(folder.glob(f"{prefix}*.toml"))}


_loaded: dict[str, Method] | None = None
_declared: list[str] = []  # record names in the order their packages declare them
_extra: dict[str, Method] = {}


def _records(value: Any, where: str) -> list[Method]:
    items = value if isinstance(value, (list, tuple)) else [value]
    for m in items:
        if not isinstance(m, Method):
            raise UnknownNameError(
                f"entry point {where} gives a {type(m).__name__}, not a psc_eval.methods."
                f"Method, in group {ENTRY_POINT_GROUP!r}, point it at a Method or a list")
    return list(items)


def _load() -> dict[str, Method]:
    global _loaded
    if _loaded is None:
        eps = list(entry_points(group=ENTRY_POINT_GROUP))
        # psc-eval's own records first (in pyproject order), then other packages by name
        own = [e for e in eps if e.dist is not None and e.dist.name == DIST_NAME]
        rest = sorted((e for e in eps if e not in own),
                      key=lambda e: (e.dist.name if e.dist is not None else "", e.name))
        found: dict[str, Method] = {}
        for ep in own + rest:
            try:
                value = ep.load()
            except (ImportError, AttributeError) as e:
                raise UnknownNameError(
                    f"cannot load method entry point {ep.name} = {ep.value} ({e}), in group "
                    f"{ENTRY_POINT_GROUP!r}, fix or uninstall the package that declares it"
                ) from None
            for m in _records(value, f"{ep.name} = {ep.value}"):
                found.setdefault(m.name, m)
        _declared[:] = list(found)
        _loaded = {n: found[n] for n in _in_table_order(found)}
    return {**_loaded, **_extra}


def register_method(method: Method) -> Method:
    """Add a record at run time (tests, notebooks); a package uses the entry point."""
    _extra[method.name] = method
    return method


def all_methods() -> dict[str, Method]:
    """name -> record: psc-eval's own, then installed packages', then run-time ones."""
    return _load()


def get_method(name: str) -> Method | None:
    """The record of a registered method, or None (e.g. a user's ``module:Class``)."""
    return _load().get(name)


# Rows without a record (a user's module:Class, a --predictions folder): the label and
# group their runs recorded or a report's --label / --group gave, name -> (label, group).
_described: dict[str, tuple[str, str]] = {}


def check_group(value: str, where: str) -> str:
    if value not in GROUPS:
        raise UnknownNameError(f"group {value!r}, in {where}, use one of {', '.join(GROUPS)}")
    return value


def describe(name: str, label: str | None = None, group: str | None = None) -> None:
    """Give a row without a record a display label and table group (a record's own label
    and group win: the records are the one home of the registered methods' names)."""
    if get_method(name) is not None:
        return
    old_label, old_group = _described.get(name, (name, "own"))
    _described[name] = (label or old_label,
                        check_group(group, f"the group of row {name!r}") if group
                        else old_group)


def forget_described() -> None:
    """Drop the labels rows were given (a report starts from its own runs)."""
    _described.clear()


def row_identity(colorizer: Any) -> dict[str, str]:
    """The label and group a colorizer object shows under: its record's, else its class's
    ``label`` / ``group`` attributes, else its name and ``own`` (recorded in its runs, so
    the report names a user's row as the class asks)."""
    name = str(getattr(colorizer, "name", colorizer))
    m = get_method(name)
    if m is not None:
        return {"label": m.display, "group": m.group}
    lab = getattr(colorizer, "label", None)
    grp = getattr(colorizer, "group", None)
    return {"label": lab if isinstance(lab, str) and lab else _described.get(name, (name,))[0],
            "group": check_group(grp, f"the group attribute of {name!r}")
            if isinstance(grp, str) and grp else _described.get(name, (name, "own"))[1]}


def label(name: str) -> str:
    """The display label of a row: its record's, else the one it was given (a class's
    ``label``, ``report --label``), else the name itself."""
    m = get_method(name)
    if m is not None:
        return m.display
    return _described.get(name, (name,))[0]


def group(name: str) -> str:
    m = get_method(name)
    if m is not None:
        return m.group
    return _described.get(name, (name, "own"))[1]


def names_in(group_name: str) -> list[str]:
    return [m.name for m in _load().values() if m.group == group_name]


def ablation_rows() -> list[Method]:
    """The ablation table's rows, in the order their package declares them (the paper's
    progression: purple, purple-blue, purple-blue-green = ours, then the other fusion)."""
    records = _load()
    order = _declared + [n for n in records if n not in _declared]
    return [records[n] for n in order if records[n].group == "ablation"
            or records[n].ablation_label]


def _rank(name: str, group_name: str) -> int:
    if name == "gray":
        return 0
    if name == "gt":
        return len(GROUPS) + 1
    return GROUPS.index(group_name) + 1


def _in_table_order(records: Mapping[str, Method]) -> list[str]:
    """Record names by group in table order (gray first, gt last), load order within."""
    pos = {n: i for i, n in enumerate(records)}
    return sorted(records, key=lambda n: (_rank(n, records[n].group), pos[n]))


def table_order(names: Iterable[str], groups: Sequence[str] | None = None) -> list[str]:
    """THE row order of Tables 3-4: gray, single-output, other methods (by name), diverse,
    the paper's model, ground truth; ``groups`` keeps only those groups (reference rows
    and unregistered names count as themselves: gray first, gt last, others 'own')."""
    records = _load()
    pos = {n: i for i, n in enumerate(records)}

    def key(n: str) -> tuple:
        g = group(n)
        return (_rank(n, g), 0, n) if g == "own" else (_rank(n, g), pos.get(n, 0), n)

    keep = list(dict.fromkeys(names))
    if groups is not None:
        keep = [n for n in keep if n in ("gray", "gt") and "reference" in groups
                or group(n) in groups]
    return sorted(keep, key=key)
