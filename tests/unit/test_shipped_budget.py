"""The checkpoints shipped in the repository: every manifest entry's file is there with
its sha256, nothing unlisted lies beside them, and together they stay within the
repository's budget of 40 MB (a fresh clone downloads them)."""

from __future__ import annotations

import json
from pathlib import Path

from psc_eval.io import sha256_file
from psc_eval.shipped import SHIP_BUDGET_BYTES, shipped_bytes

SHIPPED = Path(__file__).resolve().parents[2] / "reports" / "toy" / "checkpoints"


def test_manifest_matches_the_files_and_the_budget_holds():
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    entries = manifest["checkpoints"]
    files = {p.name for p in SHIPPED.glob("*.pt")}
    assert files == {e["file"] for e in entries.values()}
    for key, e in entries.items():
        p = SHIPPED / e["file"]
        assert sha256_file(p) == e["sha256"], key
        assert p.stat().st_size == e["bytes"], key
    total = shipped_bytes(SHIPPED)
    assert total <= SHIP_BUDGET_BYTES, f"{total / 1e6:.1f} MB shipped, budget 40 MB"
