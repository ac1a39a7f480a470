"""Shared test setup: makes ``tests/fixtures_data.py`` importable (pytest runs with
``--import-mode=importlib``, which puts no test folder on ``sys.path``) and offers its
dataset-tree builders as factory fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import fixtures_data


@pytest.fixture
def voc_tree(tmp_path):
    """Factory: ``voc_tree(**kw)`` builds a VOCdevkit under tmp_path (see build_voc)."""
    return lambda **kw: fixtures_data.build_voc(tmp_path, **kw)


@pytest.fixture
def coco10k_tree(tmp_path):
    return lambda **kw: fixtures_data.build_cocostuff10k(tmp_path, **kw)


@pytest.fixture
def coco164k_tree(tmp_path):
    return lambda **kw: fixtures_data.build_cocostuff164k(tmp_path, **kw)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of many tiny ops: on a shared 2-core machine two
    OpenMP threads wait for each other far longer than the work takes (measured 5-100x)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
