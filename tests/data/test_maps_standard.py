"""data.mode=standard on the feature-map datamodules (Liu et al. Table IV): which labels and which images each
split uses, hand-checked on tiny files of each layout, and the errors when the training labels are missing."""

import h5py
import numpy as np
import pytest
import torch

from tests.maps_helpers import (
    S,
    U,
    standard_test_unseen,
    standard_train_labels,
    write_biam,
    write_cached,
    write_images,
)
from zsl_lightning.data.maps_benchmark import MapsDataModule, StandardMapsDataModule
from zsl_lightning.data.maps_store import pack_maps
from zsl_lightning.errors import DataError


def _dm(root, **kw):
    return MapsDataModule(root=str(root), name="NUS-TINY", max_positives=None, val_image_fraction=0.25,
                          val_label_fraction=0.34, mode="standard", **kw)


def _rows(n, drop):
    return [i for i in range(n) if not drop(i)]


def test_cached_layout_standard_split_by_hand(tmp_path):
    root = write_cached(tmp_path, standard=True, nan_test_row=4)  # 20 training, 10 test images
    dm = _dm(root)
    assert type(dm) is StandardMapsDataModule and dm.tasks == ("std",)
    info = dm.info
    # only the U unseen labels, all seen; test images: rows i % 3 != 0 have an unseen positive
    test_rows = _rows(10, lambda i: i % 3 == 0)
    assert (info["mode"], info["num_seen"], info["num_unseen"], info["num_classes"]) == ("standard", U, 0, U)
    assert info["num_test_images"] == len(test_rows) == 6 and info["single_scale"] is False

    dev = dm.split("dev")  # the last 5 training rows validate; the test file (NaN in row 4) is not read
    assert dev.train.rows.tolist() == _rows(15, lambda i: i % 4 == 3)  # rows without a positive are dropped
    assert dev.eval_gzsl.rows.tolist() == [16, 17, 18]  # 15 and 19 have none
    assert torch.equal(dev.eval_gzsl.y, torch.as_tensor(standard_train_labels(20)[16:19]))
    assert dev.eval_prefix == "val" and len(dev.unseen_classes) == 0

    with pytest.raises(DataError, match="NaN/inf"):  # the test split reads the test maps
        dm.split("test")
    dm = _dm(write_cached(tmp_path / "ok", standard=True))
    split = dm.split("test")
    zsl = MapsDataModule(root=str(tmp_path / "ok"), name="NUS-TINY", max_positives=None).split("test")
    train_rows = _rows(20, lambda i: i % 4 == 3)
    assert split.train.rows.tolist() == train_rows
    assert torch.equal(split.train.y, torch.as_tensor(standard_train_labels(20)[train_rows]))  # labels_81
    assert split.eval_gzsl.rows.tolist() == test_rows
    assert torch.equal(split.eval_gzsl.y, torch.as_tensor(standard_test_unseen(10)[test_rows]))
    from zsl_lightning.data.feature_maps_format import FeatureMapsFile

    maps, _ = FeatureMapsFile(tmp_path / "ok" / "maps" / "test.h5").read(0, 10)
    want = pack_maps(maps, ((28, 4), (14, 8), (7, 8)))[test_rows]
    assert torch.equal(split.eval_gzsl.x, want)  # the images themselves, not only their labels
    # label ids 0..U-1 = the unseen labels (Concepts81 order), scored all together as the one task "std"
    assert split.train_cols.tolist() == split.eval_gzsl_cols.tolist() == split.seen_classes.tolist() == list(range(U))
    assert split.class_names == zsl.class_names[S:]
    assert torch.equal(split.class_embeddings, zsl.class_embeddings[S:])
    assert [(t, kind) for t, kind, _, _ in split.eval_tasks] == [("std", "gzsl")]


def test_biam_layout_standard_split_by_hand(tmp_path):
    root = write_biam(tmp_path, standard=True)  # 10 training, 6 test images, key order = index order
    dm = _dm(root, source="biam")
    info = dm.info
    assert info["mode"] == "standard" and info["single_scale"] is True and dm.notes["single_scale"] is True
    split = dm.split("test")
    train_rows, test_rows = _rows(10, lambda i: i % 4 == 3), _rows(6, lambda i: i % 3 == 0)
    assert split.train.rows.tolist() == train_rows and split.eval_gzsl.rows.tolist() == test_rows == [1, 2, 4, 5]
    assert torch.equal(split.train.y, torch.as_tensor(standard_train_labels(10)[train_rows]))  # <img>-labels_81
    assert torch.equal(split.eval_gzsl.y, torch.as_tensor(standard_test_unseen(6)[test_rows]))
    with h5py.File(root / "features" / "nus_wide_test.h5", "r") as f:
        want = np.stack([f[f"test{i:03d}-features"][()].reshape(-1) for i in test_rows])
    assert torch.equal(split.eval_gzsl.x, torch.as_tensor(want))
    dev = dm.split("dev")  # round(0.25 * 10) = 2 validation rows (8, 9); training rows 0..7 but 3 and 7
    assert dev.train.rows.tolist() == [0, 1, 2, 4, 5, 6] and dev.eval_gzsl.rows.tolist() == [8, 9]


def test_images_layout_standard_split(tmp_path):
    dm = _dm(write_images(tmp_path, standard=True), source="images", image_size=32, backbone={"weights": None})
    split = dm.split("test")
    rows = _rows(10, lambda i: i % 4 == 3)
    assert split.train.rows.tolist() == rows
    assert torch.equal(split.train.y, torch.as_tensor(standard_train_labels(10)[rows]))
    assert split.train.x.dtype == torch.uint8 and split.eval_gzsl.rows.tolist() == [1, 2, 4, 5]


@pytest.mark.parametrize("source,fix", [("cached", "cache_feature_maps.py"), ("biam", "<img>-labels_81"),
                                        ("images", "write_image_list")])
def test_missing_standard_labels_say_what_and_how(source, fix, tmp_path):
    write = {"cached": write_cached, "biam": write_biam, "images": write_images}[source]
    root = write(tmp_path)  # the zsl-mode files: no labels over the unseen labels for the training images
    kw = {"image_size": 32, "backbone": {"weights": None}} if source == "images" else {}
    with pytest.raises(DataError) as e:
        _dm(root, source=source, **kw).load()
    msg = str(e.value)
    assert "labels_81" in msg and "data.mode=standard" in msg and fix in msg and "train" in msg
    MapsDataModule(root=str(root), source=source, max_positives=None, **kw).load()  # zsl mode does not need them


def test_standard_labels_of_the_wrong_width(tmp_path):
    root = write_cached(tmp_path, standard=True)
    with h5py.File(root / "maps" / "train.h5", "r+") as f:
        del f["labels_81"]
        f.create_dataset("labels_81", data=-np.ones((20, 81), np.int8))  # the 81 concepts, but U = 3 here
    with pytest.raises(DataError, match=r"train\.h5.*'labels_81' has 81 columns, expected 3"):
        _dm(root).load()


def test_cli_exits_2_with_one_message(tmp_path, capsys):
    from tests.helpers import compose_cfg
    from zsl_lightning.cli import main_entry

    root = write_cached(tmp_path / "data")
    over = ["method=gbe", "data=nuswide_maps", f"data.root={root}", "data.mode=standard", "debug=fast"]
    with pytest.raises(SystemExit) as e:
        main_entry(compose_cfg(over, tmp_path / "out", tmp_path / "cache"))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err and "'labels_81'" in err and "maps/train.h5" in err


def test_synthetic_maps_standard_labels_are_the_unseen_labels(tmp_path, cache_dir):
    from tests.helpers import compose_cfg
    from zsl_lightning.pipeline import build_datamodule

    over = ["method=gbe", "data=synthetic_maps", "data.generator.num_train=240", "data.generator.num_test=80"]
    zsl = build_datamodule(compose_cfg(over, tmp_path / "a", cache_dir))
    std = build_datamodule(compose_cfg([*over, "data.mode=standard"], tmp_path / "b", cache_dir))
    assert std.info["num_seen"] == zsl.info["num_unseen"] == 20 and std.tasks == ("std",)
    z, s = zsl.split("test"), std.split("test")
    assert s.class_names == [z.class_names[int(c)] for c in z.unseen_classes]
    keep = (z.eval_zsl.y > 0).any(1)  # the test images with an unseen positive, their unseen columns
    assert torch.equal(s.eval_gzsl.y, z.eval_zsl.y[keep]) and torch.equal(s.eval_gzsl.x, z.eval_zsl.x[keep])


def test_cache_script_carries_the_standard_labels(tmp_path):
    """Layout (a) → (b): scripts/cache_feature_maps.py copies the list's labels_81, so the cached maps serve
    data.mode=standard with the same rows and labels as the images."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "cache_maps", Path(__file__).resolve().parents[2] / "scripts" / "cache_feature_maps.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root = write_images(tmp_path, standard=True)
    for part in ("train", "test"):
        script.main(["--list", str(root / f"images_{part}.h5"), "--out", str(root / "maps" / f"{part}.h5"),
                     "--tiny", "--workers", "0", "--batch-size", "4"])
    with h5py.File(root / "maps" / "train.h5", "r") as f:
        assert np.array_equal(f["labels_81"][()], standard_train_labels(10))
    with h5py.File(root / "maps" / "test.h5", "r") as f:
        assert "labels_81" not in f  # the test list has none: nothing to copy
    cached = _dm(root).split("test")
    images = _dm(root, source="images", backbone={"weights": None}).split("test")
    assert cached.train.rows.tolist() == images.train.rows.tolist() == _rows(10, lambda i: i % 4 == 3)
    assert torch.equal(cached.train.y, images.train.y) and torch.equal(cached.eval_gzsl.y, images.eval_gzsl.y)
