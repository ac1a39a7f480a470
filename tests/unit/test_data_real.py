"""Real-data loaders (voc, cocostuff, folder) on small trees in the real on-disk layouts,
loaded through ``get_dataset``: the code path users hit."""

from __future__ import annotations

import shutil

import fixtures_data as fd
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from psc_eval.data import collate, get_dataset
from psc_eval.data.cocostuff import CLASS_NAMES as COCO_NAMES
from psc_eval.data.voc import CLASS_NAMES as VOC_NAMES
from psc_eval.errors import DataError

SIZE = 32


def nearest_ref(m: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize by pixel centres, written out (independent of PIL)."""
    h, w = m.shape
    ys = np.floor((np.arange(size) + 0.5) * h / size).astype(int)
    xs = np.floor((np.arange(size) + 0.5) * w / size).astype(int)
    return m[ys][:, xs]


def bilinear_aa_ref(rgb: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize in torch (designed to match PIL's BILINEAR filter)."""
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].double()
    r = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return r[0].permute(1, 2, 0).numpy()


# ---------------------------------------------------------------------- VOC


def test_voc_class_names_and_counts():
    assert len(VOC_NAMES) == 21 and VOC_NAMES[0] == "background" and VOC_NAMES[15] == "person"
    assert VOC_NAMES[20] == "tvmonitor"
    assert len(COCO_NAMES) == 182
    # index = label id - 1 (labels.txt: 1 person, 91 hair brush, 92 banner, 182 wood)
    assert (COCO_NAMES[0], COCO_NAMES[90], COCO_NAMES[91], COCO_NAMES[181]) == (
        "person", "hair brush", "banner", "wood")


@pytest.mark.parametrize("which", ["devkit", "voc2012"])
def test_voc_root_is_devkit_or_voc2012(voc_tree, which):
    t = voc_tree(hw=(40, 56))
    root = t.devkit if which == "devkit" else t.voc2012
    ds = get_dataset("voc", root=root, split="train", size=SIZE, allow_partial=True)
    assert ds.num_classes == 21 and ds.has_masks and ds.base == t.voc2012
    assert ds.ids == fd.voc_ids(3)
    s = ds[1]
    assert s["id"] == ds.ids[1] and s["skip"] is None
    assert s["rgb"].shape == (3, SIZE, SIZE) and s["rgb"].dtype == torch.float32
    assert s["L"].shape == (1, SIZE, SIZE) and s["ab"].shape == (2, SIZE, SIZE)
    assert s["mask"].shape == (SIZE, SIZE) and s["mask"].dtype == torch.int64
    src = t.masks[ds.ids[1]]
    # nearest resize: every label equals the source label at the mapped pixel centre
    np.testing.assert_array_equal(s["mask"].numpy(), nearest_ref(src, SIZE))
    assert set(np.unique(s["mask"].numpy())) <= set(np.unique(src))
    assert 255 in set(np.unique(s["mask"].numpy()))  # the boundary row survives
    # antialiased bilinear for the image, within one uint8 level of the torch reference
    ref = bilinear_aa_ref(t.images[ds.ids[1]], SIZE)
    assert np.abs(s["rgb"].permute(1, 2, 0).numpy() * 255 - ref).max() <= 1.0 + 1e-4
    assert s["class_convention"].startswith("voc: 21 classes")


def test_voc_native_size_is_exact(voc_tree):
    t = voc_tree(hw=(48, 48))
    ds = get_dataset("voc", root=t.devkit, split="val", size=48, allow_partial=True)
    for i, sid in enumerate(ds.ids):
        s = ds[i]
        np.testing.assert_array_equal(s["mask"].numpy(), t.masks[sid])
        np.testing.assert_array_equal(
            np.round(s["rgb"].permute(1, 2, 0).numpy() * 255).astype(np.uint8), t.images[sid])
    # a pixel in the boundary row is 255, a pixel of a block is its class
    assert int(ds[0]["mask"][3, 10]) == 255
    assert int(ds[0]["mask"][20, 20]) == int(t.masks[ds.ids[0]][20, 20]) < 21


def test_voc_default_split_and_official_counts(voc_tree):
    t = voc_tree()
    with pytest.raises(DataError) as e:
        get_dataset("voc", root=t.devkit)  # default split val, official count 1449
    msg = str(e.value)
    assert "'val' has 2 images" in msg and "1449" in msg and "--allow-partial" in msg
    assert "val.txt" in msg
    ds = get_dataset("voc", root=t.devkit, allow_partial=True)
    assert ds.split == "val" and ds.size == 128 and len(ds) == 2
    with pytest.raises(DataError, match="1464"):
        get_dataset("voc", root=t.devkit, split="train")
    # the official count passes without allow_partial (lazy: only the list is read)
    ids = fd.voc_ids(1464)
    (t.voc2012 / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    ds = get_dataset("voc", root=t.devkit, split="train", size=SIZE)
    assert ds.ids == ids
    assert ds[0]["id"] == ids[0]


@pytest.mark.parametrize("fmt,place", [
    ("deeplab", "ImageSets/SegmentationAug"),   # kazuto1011/deeplab-pytorch layout
    ("ids", "ImageSets/SegmentationAug"),
    ("deeplab", "list"),                         # DeepLab's list/ inside VOC2012
    ("ids", "../list"),                          # list/ next to VOC2012
])
def test_voc_train_aug_list_formats_and_places(voc_tree, fmt, place):
    aug = fd.voc_ids(4, year=2008, start=7)
    t = voc_tree(aug=aug, aug_format=fmt, aug_list_place=place, hw=(40, 56))
    for root in (t.devkit, t.voc2012):
        ds = get_dataset("voc", root=root, split="train_aug", size=SIZE, allow_partial=True)
        assert ds.ids == aug
        assert ds.list_file == t.aug_list
        assert ds.mask_dir == t.voc2012 / "SegmentationClassAug"
        s = ds[2]
        np.testing.assert_array_equal(s["mask"].numpy(), nearest_ref(t.aug_masks[aug[2]], SIZE))
    with pytest.raises(DataError, match="10582"):
        get_dataset("voc", root=t.devkit, split="train_aug", size=SIZE)


def test_voc_train_aug_missing_parts(voc_tree):
    t = voc_tree()
    with pytest.raises(DataError, match="SegmentationClassAug folder not found"):
        get_dataset("voc", root=t.devkit, split="train_aug", allow_partial=True)
    (t.voc2012 / "SegmentationClassAug").mkdir()
    with pytest.raises(DataError, match="train_aug list file not found") as e:
        get_dataset("voc", root=t.devkit, split="train_aug", allow_partial=True)
    assert "SegmentationAug" in str(e.value)


def test_voc_list_line_with_three_fields_and_duplicates(voc_tree):
    t = voc_tree()
    lst = t.voc2012 / "ImageSets" / "Segmentation" / "val.txt"
    lst.write_text("a b c\n")
    with pytest.raises(DataError, match="line 1 has 3 fields"):
        get_dataset("voc", root=t.devkit, allow_partial=True)
    lst.write_text("2007_000100\n\n2007_000100\n")
    with pytest.raises(DataError, match="listed twice"):
        get_dataset("voc", root=t.devkit, allow_partial=True)


def test_voc_is_lazy_and_names_a_missing_image_at_load(voc_tree):
    t = voc_tree()
    ds = get_dataset("voc", root=t.devkit, split="train", size=SIZE, allow_partial=True)
    victim = t.voc2012 / "JPEGImages" / f"{ds.ids[2]}.jpg"
    victim.unlink()  # after __init__: construction decoded nothing
    ds[0]
    with pytest.raises(DataError, match="image file not found") as e:
        ds[2]
    assert str(victim) in str(e.value)


def test_voc_grayscale_image_is_skipped_and_collated_aside(voc_tree):
    t = voc_tree()
    sid = fd.voc_ids(3)[1]
    fd.write_special(t.voc2012 / "JPEGImages" / f"{sid}.jpg", "gray", h=40, w=56)
    ds = get_dataset("voc", root=t.devkit, split="train", size=SIZE, allow_partial=True)
    samples = [ds[i] for i in range(len(ds))]
    assert samples[1]["skip"] == "grayscale source (PIL mode L)"
    assert (samples[1]["mask"] == 255).all() and samples[1]["rgb"].shape == (3, SIZE, SIZE)
    b = collate(samples)
    assert b["ids"] == [ds.ids[0], ds.ids[2]] and b["rgb"].shape == (2, 3, SIZE, SIZE)
    assert b["skipped"] == [{"id": sid, "reason": "grayscale source (PIL mode L)"}]


def test_voc_fingerprint_depends_on_split_and_ids(voc_tree):
    t = voc_tree()
    a = get_dataset("voc", root=t.devkit, split="train", size=SIZE, allow_partial=True)
    b = get_dataset("voc", root=t.voc2012, split="train", size=SIZE, allow_partial=True)
    c = get_dataset("voc", root=t.devkit, split="val", size=SIZE, allow_partial=True)
    assert a.fingerprint()["ids_sha256"] == b.fingerprint()["ids_sha256"]
    assert a.fingerprint_key() != c.fingerprint_key()
    assert a.fingerprint()["class_convention"] == a.class_convention


def test_voc_unknown_split(voc_tree):
    t = voc_tree()
    with pytest.raises(DataError, match="unknown voc split 'test'"):
        get_dataset("voc", root=t.devkit, split="test")


# ---------------------------------------------------------------------- COCO-stuff


def test_cocostuff10k_mat_labels_minus_one_and_unlabeled_to_255(coco10k_tree):
    t = coco10k_tree(hw=(36, 44))
    ds = get_dataset("cocostuff", root=t.root, size=SIZE, allow_partial=True)
    assert ds.split == "test" and ds.variant == "10k" and len(ds) == 2
    assert ds.num_classes == 182
    for i, sid in enumerate(ds.ids):
        S = t.labels[sid].astype(np.int64)
        expected = np.where(S == 0, 255, S - 1)
        s = ds[i]
        np.testing.assert_array_equal(s["mask"].numpy(), nearest_ref(expected, SIZE))
        assert "S - 1" in s["class_convention"] and "-> 255" in s["class_convention"]
    # label ids 1 (person) and 182 (wood) become classes 0 and 181; 0 (unlabeled) becomes 255
    ds_full = get_dataset("cocostuff", root=t.root, split="all", size=44, allow_partial=True)
    vals: set[int] = set()
    for i in range(len(ds_full)):
        vals |= set(np.unique(ds_full[i]["mask"].numpy()).tolist())
    assert vals <= {255, 0, 1, 91, 149, 181} and {255, 0, 181} <= vals
    assert ds.fingerprint()["variant"] == "10k"


def test_cocostuff10k_counts_and_lists(coco10k_tree):
    t = coco10k_tree()
    with pytest.raises(DataError, match="'train' has 3 images, the official count is 9000"):
        get_dataset("cocostuff", root=t.root, split="train")
    ds = get_dataset("cocostuff", root=t.root, split="train", allow_partial=True)
    assert ds.ids == [f"COCO_train2014_{i:012d}" for i in (77, 78, 79)]
    (t.root / "imageLists" / "test.txt").unlink()
    with pytest.raises(DataError, match="list file not found") as e:
        get_dataset("cocostuff", root=t.root, allow_partial=True)
    assert str(t.root / "imageLists" / "test.txt") in str(e.value)


def test_cocostuff10k_bad_mat_files(coco10k_tree):
    from scipy.io import savemat

    t = coco10k_tree()
    ds = get_dataset("cocostuff", root=t.root, size=SIZE, allow_partial=True)
    sid0, sid1 = ds.ids
    S = t.labels[sid0].copy()
    S[0, 0] = 183
    savemat(t.root / "annotations" / f"{sid0}.mat", {"S": S})
    with pytest.raises(DataError, match=r"label ids \[183\] outside 0..182"):
        ds[0]
    savemat(t.root / "annotations" / f"{sid1}.mat", {"labels": t.labels[sid1]})
    with pytest.raises(DataError, match="no field 'S'"):
        ds[1]
    savemat(t.root / "annotations" / f"{sid1}.mat", {"S": t.labels[sid1][:-2]})
    with pytest.raises(DataError, match="mask size 44x34 differs from its image 44x36"):
        ds[1]
    (t.root / "annotations" / f"{sid1}.mat").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read .mat annotation"):
        ds[1]


@pytest.mark.parametrize("maps_dir", ["stuffthingmaps", "annotations"])
def test_cocostuff164k_layout_and_split_aliases(coco164k_tree, maps_dir):
    t = coco164k_tree(maps_dir=maps_dir, hw=(30, 42))
    ds = get_dataset("cocostuff", root=t.root, size=SIZE, allow_partial=True)
    # only 164k present: the default 'test' is val2017, recorded under its real name
    assert ds.split == "val2017" and ds.variant == "164k" and len(ds) == 3
    assert ds.mask_dir == t.root / maps_dir / "val2017"
    for i, sid in enumerate(ds.ids):
        s = ds[i]
        src = t.labels[f"val2017/{sid}"]
        np.testing.assert_array_equal(s["mask"].numpy(), nearest_ref(src, SIZE))
        assert "used as stored" in s["class_convention"]
    tr = get_dataset("cocostuff", root=t.root, split="train", size=SIZE, allow_partial=True)
    assert tr.split == "train2017" and tr.ids == ["000000001139", "000000001140"]
    ex = get_dataset("cocostuff", root=t.root, split="train2017", size=SIZE, allow_partial=True)
    assert ex.ids == tr.ids and ex.fingerprint_key() == tr.fingerprint_key()
    with pytest.raises(DataError, match="'val2017' has 3 images, the official count is 5000"):
        get_dataset("cocostuff", root=t.root, split="val2017")
    lim = get_dataset("cocostuff", root=t.root, size=SIZE, allow_partial=True).subset(2)
    assert len(lim) == 2 and lim[1]["id"] == ds.ids[1]


def test_cocostuff164k_missing_maps_and_wrong_map_values(coco164k_tree):
    t = coco164k_tree()
    sid = min(p.stem for p in (t.root / "images" / "val2017").iterdir())

    m = t.labels[f"val2017/{sid}"].copy()
    m[5, 5] = 200
    Image.fromarray(m.astype(np.uint8), mode="L").save(
        t.root / "stuffthingmaps" / "val2017" / f"{sid}.png")
    ds = get_dataset("cocostuff", root=t.root, split="val2017", allow_partial=True)
    with pytest.raises(DataError, match=r"values \[200\] outside \{0..181, 255\}"):
        ds[0]
    shutil.rmtree(t.root / "stuffthingmaps" / "train2017")
    with pytest.raises(DataError, match="label maps not found"):
        get_dataset("cocostuff", root=t.root, split="train2017", allow_partial=True)


def test_cocostuff_unknown_split_and_empty_root(tmp_path):
    with pytest.raises(DataError, match="unknown cocostuff split 'val'"):
        get_dataset("cocostuff", root=tmp_path, split="val")
    with pytest.raises(DataError, match="images folder not found") as e:
        get_dataset("cocostuff", root=tmp_path)
    assert str(tmp_path / "images") in str(e.value)


# ---------------------------------------------------------------------- folder


def test_folder_recursive_sorted_and_filters(tmp_path):
    root = tmp_path / "photos"
    fd.write_image(root / "b.png", fd.color_image(1, 20, 30), "PNG")
    fd.write_image(root / "A" / "z.JPG", fd.color_image(2, 25, 25), "JPEG")
    fd.write_image(root / "a.jpeg", fd.color_image(3, 16, 16), "JPEG")
    fd.write_image(root / ".hidden" / "x.png", fd.color_image(4, 16, 16), "PNG")
    fd.write_image(root / ".y.png", fd.color_image(4, 16, 16), "PNG")
    (root / "notes.txt").write_text("not an image")
    (root / "meta.json").write_text("{}")
    ds = get_dataset("folder", root=root, size=SIZE)
    assert ds.ids == ["A/z.JPG", "a.jpeg", "b.png"]
    assert ds.split == "all" and not ds.has_masks and ds.num_classes == 0
    s = ds[2]
    assert s["skip"] is None and (s["mask"] == 255).all() and s["mask"].shape == (SIZE, SIZE)
    ref = bilinear_aa_ref(fd.color_image(1, 20, 30), SIZE)
    assert np.abs(s["rgb"].permute(1, 2, 0).numpy() * 255 - ref).max() <= 1.0 + 1e-4
    sub = get_dataset("folder", root=root, split="A", size=SIZE)
    assert sub.ids == ["z.JPG"]
    with pytest.raises(DataError, match="split folder not found"):
        get_dataset("folder", root=root, split="val")


def test_folder_empty_and_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(DataError, match="no image files found") as e:
        get_dataset("folder", root=tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value)
    with pytest.raises(DataError, match="dataset folder not found"):
        get_dataset("folder", root=tmp_path / "nope")
    with pytest.raises(DataError, match="needs a folder, in --root"):
        get_dataset("folder")
