"""psc_eval.registry: the one lazy registry class and the registries built on it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from psc_eval.errors import UnknownNameError
from psc_eval.registry import Registry, import_attr


def make() -> Registry:
    r = Registry("widget", allow_paths=True)
    r.add("od", "collections:OrderedDict", "an ordered dict")
    r.add("obj", 42, "a plain object")
    return r


def test_unknown_name_is_one_line_listing_the_known_names():
    r = make()
    with pytest.raises(UnknownNameError) as e:
        r.get("nope")
    msg = str(e.value)
    assert "\n" not in msg
    assert "unknown widget 'nope'" in msg and "known: od, obj" in msg
    assert "--widget" in msg and "psc-eval ls" in msg and "module:attr" in msg
    strict = Registry("gadget", option="--thing")
    strict.add("a", 1)
    with pytest.raises(UnknownNameError, match=r"unknown gadget 'b', known: a, in --thing") as e:
        strict.get("b")
    assert "module:attr" not in str(e.value)


def test_module_attr_entries_resolve_lazily_and_are_remembered():
    import collections

    r = make()
    assert r.target("od") == "collections:OrderedDict"  # not imported by add / list
    assert r.get("od") is collections.OrderedDict
    assert r.target("od") is collections.OrderedDict
    assert r.get("obj") == 42
    assert r.build("od", a=1) == collections.OrderedDict(a=1)
    assert r.list() == {"od": "an ordered dict", "obj": "a plain object"}
    assert r.names() == ["od", "obj"] and "od" in r and len(r) == 2 and list(r) == ["od", "obj"]


def test_unregistered_paths_only_where_allowed():
    import collections

    assert make().get("collections:OrderedDict") is collections.OrderedDict
    assert make().get("os.path:join.__name__") == "join"  # dotted attribute
    with pytest.raises(UnknownNameError, match="unknown gadget"):
        Registry("gadget").get("collections:OrderedDict")
    with pytest.raises(UnknownNameError, match="cannot import widget module 'no_such_mod_xyz'"):
        make().get("no_such_mod_xyz:Thing")
    with pytest.raises(UnknownNameError, match="no attribute 'Nope'"):
        make().get("collections:Nope")
    with pytest.raises(UnknownNameError, match="bad object path"):
        import_attr("collections")


def test_register_decorator_stores_the_object_and_keeps_a_description():
    r = make()

    @r.register("thing", "a registered class")
    class Thing:
        pass

    assert r.get("thing") is Thing and r.describe("thing") == "a registered class"

    # re-registering a lazy name keeps its description unless a new one is given
    @r.register("od")
    class Mine:
        pass

    assert r.get("od") is Mine and r.describe("od") == "an ordered dict"


def test_project_registries_are_registry_instances():
    from psc_eval.colorizer import COLORIZERS, list_colorizers
    from psc_eval.data import DATASETS, list_datasets
    from psc_eval.judge.registry import SEGMENTERS, SegmenterSpec, get_spec, list_segmenters

    for reg in (COLORIZERS, DATASETS, SEGMENTERS):
        assert isinstance(reg, Registry)
    assert list_colorizers() == COLORIZERS.list() and "ours" in COLORIZERS
    assert list_datasets() == DATASETS.list() and "toy" in DATASETS
    assert list_segmenters() == SEGMENTERS.list()
    assert all(isinstance(get_spec(n), SegmenterSpec) for n in SEGMENTERS)
    with pytest.raises(UnknownNameError, match="unknown segmenter 'x'.*deeplabv2-resnet101"):
        get_spec("x")
    with pytest.raises(UnknownNameError, match="unknown segmenter"):  # no module:attr here
        get_spec("psc_eval.judge.registry:SegmenterSpec")


def test_listing_every_registry_imports_nothing_heavy():
    # The method records live beside their code (psc_eval.methods), so listing imports the
    # models' and baselines' modules (about 0.1 s on top of torch); it must not import the
    # segmenters' libraries or the real datasets' readers.
    code = (
        "import sys\n"
        "from psc_eval.colorizer import list_colorizers\n"
        "from psc_eval.data import list_datasets\n"
        "from psc_eval.judge.registry import list_segmenters\n"
        "assert 'ours' in list_colorizers() and 'voc' in list_datasets() and list_segmenters()\n"
        "heavy = ('psc_eval.data.voc',\n"
        "         'psc_eval.data.cocostuff', 'psc_eval.judge.segmenter',\n"
        "         'segmentation_models_pytorch', 'torchvision')\n"
        "print([m for m in sys.modules if m.startswith(heavy)])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
