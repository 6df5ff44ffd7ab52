"""The xlsa17 loader: real on-disk format (1-based, D x N), splits, and a clear error for each bad input."""

import h5py
import numpy as np
import pytest
import torch

from tests.helpers import write_xlsa17
from zsl_lightning.data.single_label import XLSA17DataModule
from zsl_lightning.data.split import fit_preprocessing
from zsl_lightning.data.xlsa17 import load_xlsa17
from zsl_lightning.errors import DataError, MissingFilesError


def test_loads_the_layout_and_converts_to_zero_based(tmp_path):
    write_xlsa17(tmp_path, "TINY")
    raw = load_xlsa17(tmp_path, "TINY")
    assert raw.features.shape == (120, 16)  # N x D after reading D x N
    assert raw.labels.min() == 0 and raw.labels.max() == 9
    assert raw.embeddings.shape == (10, 6)
    assert raw.locs["trainval_loc"].min() >= 0
    assert raw.class_names[0] == "c0"


def test_datamodule_info_and_test_split(tmp_path):
    write_xlsa17(tmp_path, "TINY")
    dm = XLSA17DataModule(root=str(tmp_path), name="TINY")
    info = dm.info
    assert (info["feature_dim"], info["embedding_dim"], info["num_classes"]) == (16, 6, 10)
    assert (info["num_seen"], info["num_unseen"]) == (7, 3)
    s = dm.split("test")
    assert s.eval_prefix == "test"
    assert set(s.unseen_classes.tolist()) == {7, 8, 9}
    assert set(s.train_y.unique().tolist()) == set(range(7))
    assert set(s.test_seen_y.unique().tolist()) <= set(s.seen_classes.tolist())


def test_dev_split_is_class_disjoint_and_never_touches_test(tmp_path):
    write_xlsa17(tmp_path, "TINY")
    dm = XLSA17DataModule(root=str(tmp_path), name="TINY", val_seen_fraction=0.25)
    dev, test = dm.split("dev"), dm.split("test")
    assert dev.eval_prefix == "val"
    assert set(dev.unseen_classes.tolist()) == {5, 6}  # the val_loc classes of the fixture
    assert not set(dev.train_y.tolist()) & set(dev.unseen_classes.tolist())
    assert not set(dev.unseen_classes.tolist()) & set(test.unseen_classes.tolist())
    # held-out seen images: same classes as training, different images
    assert set(dev.test_seen_y.unique().tolist()) <= set(dev.train_y.unique().tolist())
    # the dev split is built from train_loc (train + val-seen images) and val_loc (val-unseen) only
    raw = dm.raw
    assert len(dev.train_y) + len(dev.test_seen_y) == len(raw.locs["train_loc"])
    assert len(dev.test_unseen_y) == len(raw.locs["val_loc"])


def test_random_validation_classes_when_requested(tmp_path):
    write_xlsa17(tmp_path, "TINY", drop="val_loc")
    with pytest.raises(DataError, match="val_split=random"):
        XLSA17DataModule(root=str(tmp_path), name="TINY").split("dev")
    dm = XLSA17DataModule(root=str(tmp_path), name="TINY", val_split="random", val_class_fraction=0.3)
    dev = dm.split("dev")
    assert len(dev.unseen_classes) == 2 and not set(dev.unseen_classes.tolist()) & {7, 8, 9}


def test_minmax_preprocessing_matches_the_reference(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.random((50, 4)) * 5, rng.random((10, 4)) * 5
    prep = fit_preprocessing(train, "minmax")
    lo, hi = train.min(0), train.max(0)
    scaled = (train - lo) / (hi - lo)
    np.testing.assert_allclose(prep(train), scaled / scaled.max(), rtol=1e-5)
    np.testing.assert_allclose(prep(test), (test - lo) / (hi - lo) / scaled.max(), rtol=1e-5)
    l2 = fit_preprocessing(train, "l2")(train)
    np.testing.assert_allclose(np.linalg.norm(l2, axis=1), 1.0, rtol=1e-6)


def test_reads_matlab_v73_files(tmp_path):
    d = write_xlsa17(tmp_path, "TINY")
    from scipy.io import loadmat

    res = loadmat(d / "res101.mat")
    (d / "res101.mat").unlink()
    with h5py.File(d / "res101.mat", "w") as f:  # v7.3 = HDF5, stored transposed (column-major)
        f["features"] = res["features"].T
        f["labels"] = res["labels"].T
    raw = load_xlsa17(tmp_path, "TINY")
    assert raw.features.shape == (120, 16) and raw.labels.max() == 9


# ------------------------------------------------------------------------------------------ bad input
def test_missing_files_name_each_file_the_layout_and_the_source(tmp_path):
    with pytest.raises(MissingFilesError) as e:
        load_xlsa17(tmp_path / "nowhere", "CUB")
    msg = str(e.value)
    assert "res101.mat" in msg and "att_splits.mat" in msg
    assert "Expected layout" in msg and "xlsa17" in msg
    assert "does not exist" in msg


def test_missing_one_file(tmp_path):
    d = write_xlsa17(tmp_path, "TINY")
    (d / "att_splits.mat").unlink()
    with pytest.raises(MissingFilesError) as e:
        load_xlsa17(tmp_path, "TINY")
    assert "att_splits.mat" in str(e.value) and str(d / "res101.mat") not in str(e.value).split("Expected")[0]


@pytest.mark.parametrize(
    "tamper,pattern",
    [
        ({"transpose_features": True}, "looks transposed"),
        ({"zero_based_labels": True}, "1-based"),
        ({"zero_based_locs": True}, "1-based"),
        ({"nan": True}, "NaN/inf"),
        ({"inf_att": True}, "NaN/inf"),
        ({"overlap": True}, "both in trainval"),
        ({"empty_split": True}, "is empty"),
        ({"transpose_att": True}, "looks transposed"),
        ({"short_att": True}, "columns"),
        ({"drop": "test_unseen_loc"}, "test_unseen_loc"),
    ],
)
def test_each_bad_input_gets_its_message(tmp_path, tamper, pattern):
    write_xlsa17(tmp_path, "TINY", **tamper)
    with pytest.raises(DataError, match=pattern):
        load_xlsa17(tmp_path, "TINY")


def test_a_label_above_c_names_the_labels_of_res101(tmp_path):
    """A label above C (here: att one class short) points at res101.mat's labels first, with the ids."""
    write_xlsa17(tmp_path, "TINY", short_att=True)
    with pytest.raises(DataError) as e:
        load_xlsa17(tmp_path, "TINY")
    msg = str(e.value)
    assert msg.startswith(f"'{tmp_path / 'TINY' / 'res101.mat'}': 'labels'") and "1-based ids [10]" in msg
    assert "above C = 9" in msg and "att_splits.mat's 'att' lacks columns" in msg


def test_corrupt_file_is_a_data_error(tmp_path):
    d = write_xlsa17(tmp_path, "TINY")
    (d / "res101.mat").write_bytes(b"this is not a mat file")
    with pytest.raises(DataError, match="Could not read"):
        load_xlsa17(tmp_path, "TINY")


def test_overlapping_train_and_val_classes_are_rejected_for_dev(tmp_path):
    write_xlsa17(tmp_path, "TINY")
    dm = XLSA17DataModule(root=str(tmp_path), name="TINY")
    dm.load()
    dm.raw.locs["val_loc"] = np.concatenate([dm.raw.locs["val_loc"], dm.raw.locs["train_loc"][:2]])
    with pytest.raises(DataError, match="share"):
        dm.split("dev")


def test_device_split_is_cached_and_on_cpu(tmp_path):
    write_xlsa17(tmp_path, "TINY")
    dm = XLSA17DataModule(root=str(tmp_path), name="TINY")
    dm.use("test")
    a = dm.device_split("cpu")
    assert a is dm.device_split(torch.device("cpu"))
    assert a.train_x.dtype == torch.float32


def test_embedding_file_option_reads_the_class_embeddings_from_that_file(tmp_path, cache_dir):
    """``data=cub data.embedding_file=sent_splits.mat`` (VS-Boost's CNN-RNN sentences): the class embeddings,
    their dimension in ``data_info`` and the split's ``class_embeddings`` come from that file, not from
    ``att_splits.mat``'s ``att``."""
    from scipy.io import savemat

    from tests.helpers import compose_cfg
    from zsl_lightning.pipeline import build_datamodule

    root = tmp_path / "xlsa17"
    write_xlsa17(root, "CUB", att_dim=6)
    sent = np.abs(np.random.default_rng(3).standard_normal((20, 10)))  # 20-d "sentences", d x C
    savemat(root / "CUB" / "sent_splits.mat", {"att": sent})
    cfg = compose_cfg(["data=cub", f"data.root={root}", "data.embedding_file=sent_splits.mat"], tmp_path, cache_dir)
    dm = build_datamodule(cfg)
    assert dm.info["embedding_dim"] == 20
    emb = dm.split("test").class_embeddings
    assert emb.shape == (10, 20)
    assert torch.allclose(emb / emb.norm(dim=1, keepdim=True),
                          torch.as_tensor(sent.T / np.linalg.norm(sent.T, axis=1, keepdims=True), dtype=emb.dtype))
