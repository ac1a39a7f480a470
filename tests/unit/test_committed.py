"""experiments.committed.reuse: a trained experiment's result is reused only when its
identity (checkpoints, config, data, code) is exactly the one asked for."""

from __future__ import annotations

import json

from psc_eval.experiments import committed


def _write(path, identity, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"identity": identity, "value": value}))


def test_reuse_this_folder_the_repository_or_none(tmp_path, monkeypatch):
    ident = {"sources": {"joint": "ab" * 32}, "config": {"lr": 1e-3, "betas": (0.9, 0.99)},
             "epochs": 5}
    repo = tmp_path / "repo" / "fig9.json"
    monkeypatch.setattr(committed, "repo_result", lambda dataset, name: repo.parent / name)
    out = tmp_path / "out" / "fig9.json"
    # nothing anywhere: run
    assert committed.reuse(out, "toy", ident) is None
    # the repository's result of another identity (one config value differs): run
    _write(repo, {**ident, "config": {"lr": 2e-3, "betas": [0.9, 0.99]}}, 1)
    repo.with_suffix(".csv").write_text("epoch,scratch\n1,0.5\n")
    assert committed.reuse(out, "toy", ident) is None and not out.exists()
    # the repository's result of this identity (tuples read back as lists): copied
    _write(repo, ident, 2)
    assert committed.reuse(out, "toy", ident, companions=(".csv",)) == "the repository"
    assert json.loads(out.read_text())["value"] == 2
    assert out.with_suffix(".csv").read_text() == "epoch,scratch\n1,0.5\n"
    assert not out.with_name(out.name + ".tmp").exists()
    # now this folder has it
    assert committed.reuse(out, "toy", ident) == "this folder"
    # a result without an identity (older format) or unreadable: run
    out.write_text(json.dumps({"value": 3}))
    repo.write_text("{not json")
    assert committed.reuse(out, "toy", ident) is None
    # the repository's own folder as the output: never copied onto itself
    _write(repo, {**ident, "epochs": 4}, 4)
    assert committed.reuse(repo, "toy", ident) is None


def test_repo_result_is_the_source_trees_reports():
    p = committed.repo_result("toy", "naturalness-proxy.json")
    assert p.parts[-4:] == ("reports", "experiments", "toy", "naturalness-proxy.json")
    assert (p.parents[3] / "pyproject.toml").is_file()
