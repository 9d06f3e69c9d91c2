"""The SIPaKMeD dataset, image loading, transforms and the decoded-image cache."""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from fake_sipakmed import (
    BACKGROUND,
    CLASS_COLORS,
    cell_path,
    fake_split_of,
    make_fake_sipakmed,
    write_fake_splits,
)
from PIL import Image

from cervattn.constants import SIPAKMED_CLASSES
from cervattn.data import (
    BackgroundRotation,
    DecodedCache,
    SIPaKMeD,
    eval_transform,
    load_rgb,
    load_splits,
    train_transform,
)

CFG = {"input_size": (3, 16, 16), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "crop_pct": 1.0,
       "interpolation": "bilinear"}  # fmt: skip


@pytest.mark.parametrize("layout", ["official", "single", "plain"])
def test_layouts_are_read(tmp_path, layout):
    root = make_fake_sipakmed(tmp_path, layout=layout, fields_per_class=2, cells_per_field=3)
    ds = SIPaKMeD(root, splits=None)
    assert len(ds) == 5 * 2 * 3
    assert ds.classes == list(SIPAKMED_CLASSES)
    assert ds.targets == [c for c in range(5) for _ in range(6)]
    assert ds.fields[:6] == ["001"] * 3 + ["002"] * 3
    assert [s.cell for s in ds.samples[:3]] == ["01", "02", "03"]
    assert ds.groups[-1] == "Superficial-Intermediate/002"
    image, label = ds[7]
    assert image.mode == "RGB" and image.size == (12, 10) and label == 1
    assert image.getpixel((6, 5))[2] > 150  # the Koilocytotic cell colour, not another class's
    fields = SIPaKMeD(root, kind="multi", splits=None)
    assert len(fields) == 10 and {s.cell for s in fields.samples} == {None}
    assert fields[0][0].size == (24, 20)


def test_mixed_extensions_and_folder_case(tmp_path):
    root = make_fake_sipakmed(tmp_path, exts=(".png", ".JPG", ".tif", ".webp", ".bmp"), multi=False)
    os.rename(root / "im_Parabasal", root / "IM_PARABASAL")
    (root / "im_Dyskeratotic/im_Dyskeratotic/CROPPED/001_01.dat").write_text("feature file, ignored")
    ds = SIPaKMeD(root, splits=None)
    assert len(ds) == 30
    assert {s.path.suffix for s in ds.samples} == {".png", ".JPG", ".tif", ".webp", ".bmp"}
    assert ds.targets.count(SIPAKMED_CLASSES.index("Parabasal")) == 6


def test_split_rows_match_files_whatever_extension_and_layout(tmp_path):
    root = make_fake_sipakmed(tmp_path / "d", layout="single", fields_per_class=4)
    csv_path = write_fake_splits(tmp_path / "splits.csv", fields_per_class=4)
    counts = {s: len(SIPaKMeD(root, split=s, splits=csv_path)) for s in ("train", "val", "test")}
    assert counts == {"train": 20, "val": 10, "test": 10}
    both = SIPaKMeD(root, split=("train", "val"), splits=csv_path)
    assert len(both) == 30 and both.missing == 0
    assert all(s.split == fake_split_of(int(s.field)) for s in both.samples)
    fields = SIPaKMeD(root, kind="multi", split="val", splits=csv_path)
    assert [s.field for s in fields.samples] == ["003"] * 5


def test_missing_rows_are_counted_and_warned(tmp_path):
    root = make_fake_sipakmed(tmp_path / "d", fields_per_class=4, multi=False)
    csv_path = write_fake_splits(tmp_path / "splits.csv", fields_per_class=4)
    for cls in SIPAKMED_CLASSES:  # hold the test split out, as the developer copy does
        for cell in (1, 2):
            cell_path(root, cls, 4, cell).unlink()
    with pytest.warns(UserWarning, match=r"10 of 40 images listed"):
        everything = SIPaKMeD(root, splits=csv_path)
    assert len(everything) == 30 and everything.missing == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SIPaKMeD(root, split="train", splits=csv_path).missing == 0
    with pytest.raises(FileNotFoundError, match=r"split='test'.* 10 such image") as err:
        SIPaKMeD(root, split="test", splits=csv_path)
    assert str(root) in str(err.value)


def test_field_image_without_row_takes_its_cells_split(tmp_path):
    root = make_fake_sipakmed(tmp_path / "d", fields_per_class=3)
    csv_path = write_fake_splits(tmp_path / "splits.csv", fields_per_class=3, multi=False)
    ds = SIPaKMeD(root, kind="multi", split="val", splits=csv_path)
    assert len(ds) == 5 and ds.fields == ["003"] * 5 and ds.unlisted == 0


def test_shipped_split_is_the_default(tmp_path):
    root = make_fake_sipakmed(tmp_path, fields_per_class=1, cells_per_field=1, multi=False)
    with pytest.warns(UserWarning, match="not found"):
        ds = SIPaKMeD(root)
    shipped = {(r.label, r.field, r.cell): r.split for r in load_splits() if r.kind == "isolated"}
    assert [s.split for s in ds.samples] == [shipped[(c, "001", "01")] for c in SIPAKMED_CLASSES]
    assert ds.missing == 4049 - 5


def test_corrupt_file_raises_naming_it_or_is_skipped_with_warning(tmp_path):
    root = make_fake_sipakmed(tmp_path, fields_per_class=1, cells_per_field=2, multi=False)
    bad = cell_path(root, "Metaplastic", 1, 2)
    bad.write_bytes(b"not an image at all")
    with pytest.raises(OSError, match="Unreadable image .*001_02.bmp") as err:
        SIPaKMeD(root, splits=None)
    assert str(bad) in str(err.value) and "on_error='skip'" in str(err.value)
    with pytest.warns(UserWarning, match="Skipped 1 unreadable"):
        ds = SIPaKMeD(root, splits=None, on_error="skip")
    assert len(ds) == 9 and ds.skipped == 1 and ds.skipped_files[0][0] == bad


def test_truncated_file_fails_at_load_naming_it(tmp_path):
    root = make_fake_sipakmed(tmp_path, fields_per_class=1, cells_per_field=1, multi=False, size=(64, 64))
    path = cell_path(root, "Parabasal", 1, 1)
    path.write_bytes(path.read_bytes()[:200])  # header intact, pixels cut
    ds = SIPaKMeD(root, splits=None)
    with pytest.raises(OSError, match="Cannot decode image") as err:
        ds[3]
    assert str(path) in str(err.value)


def test_wrong_root_shows_expected_tree(tmp_path):
    with pytest.raises(FileNotFoundError, match="im_Dyskeratotic/im_Dyskeratotic/CROPPED/001_01.bmp"):
        SIPaKMeD(tmp_path / "nowhere")
    make_fake_sipakmed(tmp_path, classes=SIPAKMED_CLASSES[:4])
    with pytest.raises(
        FileNotFoundError, match=r"no folder for the class\(es\) \['Superficial-Intermediate'\]"
    ):
        SIPaKMeD(tmp_path)


def test_bad_arguments_and_duplicates(tmp_path):
    root = make_fake_sipakmed(tmp_path, fields_per_class=1, cells_per_field=1)
    with pytest.raises(ValueError, match="kind='cells'"):
        SIPaKMeD(root, kind="cells")
    with pytest.raises(ValueError, match="split='training'"):
        SIPaKMeD(root, split="training")
    with pytest.raises(ValueError, match="needs a split file"):
        SIPaKMeD(root, split="train", splits=None)
    Image.new("RGB", (4, 4)).save(cell_path(root, "Dyskeratotic", 1, 1, ext=".png"))
    with pytest.raises(ValueError, match="present twice"):
        SIPaKMeD(root, splits=None)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (4, 3), 200),
        Image.new("RGBA", (4, 3), (10, 20, 30, 0)),  # fully transparent: the white background shows
        Image.fromarray(np.full((3, 4), 51400, dtype=np.uint16)),  # 16-bit, 51400 / 257 = 200
    ],
    ids=["gray", "rgba", "gray16"],
)
def test_images_become_8bit_rgb(tmp_path, image):
    path = tmp_path / "x.png"
    image.save(path)
    rgb = load_rgb(path)
    assert rgb.mode == "RGB" and rgb.size == (4, 3)
    expected = 255 if image.mode == "RGBA" else 200
    assert rgb.getpixel((1, 1)) == (expected,) * 3


def test_transforms_shape_normalisation_and_pickling():
    image = Image.new("RGB", (30, 20), (255, 128, 0))
    ev = eval_transform(CFG)
    x = ev(image)
    assert x.shape == (3, 16, 16) and torch.allclose(
        x[:, 8, 8], torch.tensor([2.0, (128 / 255 - 0.5) / 0.25, -2.0]), atol=1e-5
    )
    assert torch.equal(ev(image), x)
    assert eval_transform(CFG, img_size=(8, 12))(image).shape == (3, 8, 12)
    tr = train_transform(CFG, img_size=24)
    outs = [tr(image).shape for _ in range(3)]
    assert outs == [(3, 24, 24)] * 3
    for tf in (ev, tr, pickle.loads(pickle.dumps(tr))):
        assert tf(image).dtype == torch.float32
    with pytest.raises(TypeError, match="model_or_cfg of type int"):
        eval_transform(3)


def test_train_transform_from_a_timm_model_and_varies():
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=5)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    tr = train_transform(model, img_size=32)
    torch.manual_seed(0)
    a, b = tr(image), tr(image)
    assert a.shape == (3, 32, 32) and not torch.equal(a, b)
    assert eval_transform(model).transforms[-1].mean.tolist() == pytest.approx(model.pretrained_cfg["mean"])


def test_rotation_fills_with_background_not_black():
    arr = np.full((21, 21, 3), BACKGROUND, dtype=np.uint8)
    arr[5:16, 5:16] = CLASS_COLORS[0]
    torch.manual_seed(0)
    rotated = BackgroundRotation(degrees=45)(Image.fromarray(arr))
    corners = np.asarray(rotated)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (np.abs(corners.astype(int) - BACKGROUND) <= 1).all()


def test_decoded_cache_memory_disk_and_invalidation(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (40, 20), (10, 20, 30)).save(path)
    cache = DecodedCache(max_side=10, cache_dir=tmp_path / "cache")
    arr = cache.get(path)
    assert arr.shape == (5, 10, 3) and arr.dtype == np.uint8 and cache.misses == 1
    assert cache.get(path) is arr and cache.hits == 1
    fresh = DecodedCache(max_side=10, cache_dir=tmp_path / "cache")
    assert np.array_equal(fresh.get(path), arr) and fresh.disk_hits == 1 and fresh.misses == 0
    assert not list((tmp_path / "cache").glob(".tmp-*"))
    Image.new("RGB", (40, 20), (200, 20, 30)).save(path)
    os.utime(path, ns=(1, 1))  # a new mtime even on coarse-clock filesystems
    assert fresh.get(path)[0, 0, 0] == 200 and fresh.misses == 1
    fresh.clear(disk=True)
    assert len(fresh) == 0 and not list((tmp_path / "cache").glob("*.npy"))


def test_dataset_with_cache_gives_the_same_images(tmp_path):
    root = make_fake_sipakmed(tmp_path / "d", fields_per_class=1, cells_per_field=2, multi=False)
    plain = SIPaKMeD(root, splits=None)
    cached = SIPaKMeD(root, splits=None, cache=DecodedCache())
    cached.preload()
    assert len(cached.cache) == 10
    for i in (0, 9):
        assert np.array_equal(np.asarray(cached[i][0]), np.asarray(plain[i][0]))
    assert cached.cache.hits == 2
    with pytest.raises(ValueError, match="needs a cache"):
        plain.preload()


def test_dataloader_batches(tmp_path):
    root = make_fake_sipakmed(tmp_path, fields_per_class=1, cells_per_field=2, multi=False)
    ds = SIPaKMeD(root, splits=None, transform=eval_transform(CFG))
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 3, 16, 16) and y.tolist() == [0, 0, 1, 1]


@pytest.mark.realdata
def test_real_sipakmed_split_counts(real_sipakmed):
    train = SIPaKMeD(real_sipakmed, split="train")
    val = SIPaKMeD(real_sipakmed, split="val")
    assert (len(train), len(val), train.missing, val.missing) == (2795, 826, 0, 0)
    assert not set(train.groups) & set(val.groups)
    assert np.bincount(train.targets).tolist() == [553, 576, 547, 546, 573]
    with pytest.raises(FileNotFoundError, match="lists 428 such image"):
        SIPaKMeD(real_sipakmed, split="test")
    with pytest.warns(UserWarning, match="428 of 4049"):
        everything = SIPaKMeD(real_sipakmed)
    assert (len(everything), everything.missing) == (3621, 428)
    image, label = val[0]
    assert image.mode == "RGB" and label == 0
