"""The checkpoints shipped in the repository: every manifest entry's file is there with
its sha256, nothing unlisted lies beside them, and together they stay within the
repository's budget of 40 MB (a fresh clone downloads them)."""

from __future__ import annotations

import json
from pathlib import Path

from psc_eval.io import sha256_file

SHIPPED = Path(__file__).resolve().parents[2] / "reports" / "toy" / "checkpoints"
BUDGET_BYTES = 40 * 1000 * 1000


def test_manifest_matches_the_files_and_the_budget_holds():
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    entries = manifest["checkpoints"]
    files = {p.name for p in SHIPPED.glob("*.pt")}
    assert files == {e["file"] for e in entries.values()}
    for key, e in entries.items():
        p = SHIPPED / e["file"]
        assert sha256_file(p) == e["sha256"], key
        assert p.stat().st_size == e["bytes"], key
    total = sum(p.stat().st_size for p in SHIPPED.iterdir() if p.is_file())
    assert total <= BUDGET_BYTES, f"{total / 1e6:.1f} MB shipped, budget 40 MB"
