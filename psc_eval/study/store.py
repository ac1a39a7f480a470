"""The study folder: manifest, per-observer trial order and the append-only responses log.

Layout of a study folder (written by ``psc-eval study create``)::

    STUDY_DIR/manifest.json     trial id -> method, image id, weights sha256, kind (PRIVATE:
                                the server never serves it; observers see only opaque ids)
    STUDY_DIR/stimuli/<hex>.png one PNG per trial; the random name reveals nothing
    STUDY_DIR/responses.jsonl   one JSON object per answer, appended by the server
    STUDY_DIR/closed            optional marker: when present the server refuses new answers
    STUDY_DIR/tally.json        written by ``psc-eval study tally``

The responses log is the single source of truth: the server derives every observer's
progress from it at start-up, so a restarted server, a reloaded page or a returning
observer continues where the answers stop. Each answer is ONE ``os.write`` of a complete
line followed by ``fsync`` before the server acknowledges it; a kill mid-write can leave
at most one torn last line, which readers skip (that answer is lost, nothing else).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PscError

try:  # POSIX advisory locks; on other systems the in-process lock is the only one.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
RESPONSES = "responses.jsonl"
STIMULI = "stimuli"
CLOSED = "closed"
TALLY = "tally.json"
SCHEMA = "psc-eval/study/1"

KINDS = ("test", "vigilance-real", "vigilance-wrong")
ANSWERS = {"natural": True, "not_natural": False}
# Observer ids are typed by people; keep them to a safe, printable alphabet.
OBSERVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
STIMULUS_RE = re.compile(r"^[0-9a-f]{32}\.png$")


@dataclass
class Trial:
    trial_id: str
    kind: str  # one of KINDS
    stimulus: str  # file name inside stimuli/
    method: str | None  # None for vigilance trials
    image_id: str


@dataclass
class Study:
    """A loaded study folder (manifest only; responses are read separately)."""

    root: Path
    seed: int
    display_size: int
    trials: dict[str, Trial]
    manifest: dict[str, Any] = field(repr=False)

    @property
    def responses_path(self) -> Path:
        return self.root / RESPONSES

    @property
    def closed(self) -> bool:
        return (self.root / CLOSED).exists()

    def order_for(self, observer: str) -> list[str]:
        """This observer's trial order: a permutation seeded by (study seed, observer id).

        Sorting trial ids by a keyed SHA-256 gives a uniformly random permutation that
        depends on nothing but the two strings (no library RNG whose stream could change
        between versions), so a returning observer always gets the same order.
        """

        def key(tid: str) -> bytes:
            return hashlib.sha256(f"{self.seed}\x00{observer}\x00{tid}".encode()).digest()

        return sorted(self.trials, key=key)


def load_study(root: str | Path) -> Study:
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise PscError(
            f"no study manifest, {path}, create the study with 'psc-eval study create --out {root}'"
        )
    try:
        m = json.loads(path.read_text())
        if m.get("schema") != SCHEMA:
            raise ValueError(f"schema {m.get('schema')!r}")
        trials = {
            tid: Trial(tid, t["kind"], t["stimulus"], t.get("method"), t["image_id"])
            for tid, t in m["trials"].items()
        }
        seed, display = int(m["seed"]), int(m["display_size"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise PscError(
            f"study manifest is malformed ({type(e).__name__}: {e}), {path}, recreate the study"
        ) from None
    for t in trials.values():
        if t.kind not in KINDS or not STIMULUS_RE.match(t.stimulus):
            raise PscError(
                f"study manifest has a bad trial {t.trial_id!r}, {path}, recreate the study"
            )
    return Study(root=root, seed=seed, display_size=display, trials=trials, manifest=m)


def check_observer_id(observer: Any) -> str | None:
    """-> an error message, or None when ``observer`` is a valid id."""
    if not isinstance(observer, str) or not OBSERVER_RE.match(observer):
        return ("observer id must be 1-64 characters: letters, digits and _ . @ -, "
                "starting with a letter or digit")
    return None


def valid_record(rec: Any) -> bool:
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("observer"), str)
        and isinstance(rec.get("trial"), str)
        and rec.get("answer") in ANSWERS
    )


@dataclass
class ResponseLog:
    """What a responses file holds: valid records, and how many lines were skipped."""

    records: list[dict[str, Any]]
    bad_lines: int = 0  # unparsable / invalid lines (a torn last line counts here)
    duplicates: int = 0  # repeated (observer, trial) pairs; the first answer is kept


def read_responses(path: str | Path) -> ResponseLog:
    """Read responses.jsonl, tolerating a torn or malformed line (skipped and counted)."""
    path = Path(path)
    if not path.exists():
        return ResponseLog([])
    records: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    bad = dup = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                bad += 1
                continue
            if not valid_record(rec):
                bad += 1
                continue
            # The server writes "natural" as the boolean of "answer"; a line where they
            # disagree was edited or written by something else, and neither can be trusted.
            natural = rec.get("natural", ANSWERS[rec["answer"]])
            if natural is not ANSWERS[rec["answer"]]:
                raise PscError(
                    f"line {lineno} answers {rec['answer']!r} but records natural = "
                    f"{natural!r}, in {path}, fix or delete that line (the server writes "
                    "the two in agreement)")
            key = (rec["observer"], rec["trial"])
            if key in seen:
                dup += 1
                continue
            seen.add(key)
            records.append(rec)
    return ResponseLog(records, bad, dup)


def repair_torn_tail(path: str | Path) -> bool:
    """End the file with a newline so the next append starts a fresh line.

    A kill mid-write leaves a partial last line without its newline; appending after it
    would glue the next answer onto the fragment and lose both. The fragment itself is
    kept (readers skip it) so nothing is destroyed. Returns True when a repair was made.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return False
    append_line(path, b"")
    return True


def append_line(path: str | Path, payload: bytes) -> None:
    """Append ``payload + b"\\n"`` with one write, then fsync (the durability point)."""
    data = payload + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:  # a regular-file write is whole in practice; loop in case it is not
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the flock


def encode_record(rec: dict[str, Any]) -> bytes:
    # ensure_ascii: a line is pure ASCII, so no multi-byte character can be torn in half.
    return json.dumps(rec, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()
