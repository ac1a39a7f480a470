"""A trained run in the protocol folder of another configuration than the protocol's
(e.g. trained before the protocol's config changed) is never scored under the method's
name: miou refuses with one line; --colorizer-weights scores it explicitly."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import assert_error, cli

from psc_eval.checkpoint import load_checkpoint, save_checkpoint

SHIPPED = Path(__file__).resolve().parents[2] / "reports" / "toy" / "checkpoints"


def _trained_copy(dst: Path, **train) -> None:
    ck = load_checkpoint(SHIPPED / "colorizer-ours.pt")
    ck.pop("shipped", None)  # as if trained here
    ck.pop("digest", None)
    ck["config"]["train"].update(train)
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(dst, ck)


def test_another_config_in_the_protocol_folder_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PSC_HOME", str(tmp_path / "home"))
    last = tmp_path / "home" / "models" / "toy" / "ours" / "last.pt"
    _trained_copy(last, lr=0.5)
    args = ("miou", "--colorizer", "ours", "--limit", "4", "--quiet", "--out",
            str(tmp_path / "o"), "--metrics", "psnr")
    code, _, err = cli(capsys, *args)
    line = assert_error(code, err, "has another configuration than the protocol's (")
    assert "train.lr" in line and "model.fusion" not in line  # the variant's fusion is set
    assert "--colorizer-weights" in err
    code, _, err = cli(capsys, *args, "--colorizer-weights", str(last))
    assert code == 0, err
    # psc-embedding reads ours' checkpoint: the same check applies
    code, _, err = cli(capsys, "miou", "--colorizer", "psc-embedding", "--limit", "4",
                       "--quiet", "--out", str(tmp_path / "o"), "--metrics", "psnr")
    assert_error(code, err, "the trained ours under $PSC_HOME")
