"""Results of the experiments that train (Fig. 9's runs, Table 4's proxy critics), reused
when their inputs are identical.

Each such result JSON carries an ``identity``: everything its numbers depend on (the
sha256 of every checkpoint read, the config, the seed, the images' fingerprints, the
experiment's code). ``reuse(path, identity)`` answers whether the experiment can be
skipped: when ``path`` already holds a result of that identity (a rerun), or when the
repository's own result (``reports/experiments/<dataset>/<name>``, what ``psc-eval
reproduce --out reports`` wrote for the shipped checkpoints) has it, which is then copied
to ``path``. So ``make demo`` on a fresh clone trains nothing: with the shipped models its
inputs are those of the committed results. Any change of checkpoint, config, data or code
gives another identity and the experiment runs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..identity import jsonable


def repo_result(dataset: str, name: str) -> Path:
    """``reports/experiments/<dataset>/<name>`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / "reports" / "experiments" / dataset / name


def _identity_of(path: Path) -> Any:
    try:
        return json.loads(path.read_text()).get("identity")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None


def reuse(path: Path, dataset: str, identity: Any,
          companions: tuple[str, ...] = ()) -> str | None:
    """None when the experiment must run; else where its result came from: "this folder"
    (``path`` has the same identity) or "the repository" (the committed result has it and
    was copied to ``path``, with its ``companions``: same name, other suffixes)."""
    want = json.loads(json.dumps(jsonable(identity)))  # as it reads back from JSON
    path = Path(path)
    if path.is_file() and _identity_of(path) == want:
        return "this folder"
    src = repo_result(dataset, path.name)
    if src.resolve() == path.resolve() or not src.is_file() or _identity_of(src) != want:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in companions:
        extra = src.with_suffix(suffix)
        if extra.is_file():
            shutil.copyfile(extra, path.with_suffix(suffix))
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(src, tmp)  # the JSON last, whole: a copy cut short leaves no result
    os.replace(tmp, path)
    return "the repository"
