"""What a crash leaves behind is cleaned up or recovered, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from psc_eval.io import atomic_write


def test_temp_files_of_killed_writers_are_removed_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".last.pt.{dead.pid}.abc.tmp"  # a writer killed mid-write
    stale.write_bytes(b"partial")
    live = tmp_path / f".last.pt.{os.getpid()}.xyz.tmp"  # this process, still writing
    live.write_bytes(b"in flight")
    other = tmp_path / f".other.pt.{dead.pid}.abc.tmp"  # another file's temp: not ours
    other.write_bytes(b"x")
    atomic_write(tmp_path / "last.pt", lambda f: f.write(b"ok"))
    assert (tmp_path / "last.pt").read_bytes() == b"ok"
    assert not stale.exists() and live.exists() and other.exists()
    mode = (tmp_path / "last.pt").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600


def test_truncated_toy_render_cache_is_rendered_again(tmp_path, monkeypatch):
    monkeypatch.setenv("PSC_HOME", str(tmp_path))
    from psc_eval.data import get_dataset

    ref = get_dataset("toy", split="val", size=16, n_images=8)[3]
    (npz,) = (tmp_path / "cache" / "toy").glob("*.npz")
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 3])  # a crash of the disk or a kill mid-copy
    again = get_dataset("toy", split="val", size=16, n_images=8)[3]
    for k in ("rgb", "L", "ab", "mask"):
        assert torch.equal(again[k], ref[k]), k
    assert len(npz.read_bytes()) == len(data)  # rewritten whole
