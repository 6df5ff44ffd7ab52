"""A {0, 1}-coded multi-label file is refused with the ±1/0 convention, or read with data.label_coding=binary;
a too-perfect mAP is flagged in results.json."""

import h5py
import numpy as np
import pytest
import torch

from zsl_lightning.data.multi_label import MultiLabelDataModule
from zsl_lightning.data.multilabel_format import NUSWIDE_FILES
from zsl_lightning.data.synthetic_ml import generate_nuswide_layout
from zsl_lightning.errors import ConfigError, DataError
from zsl_lightning.eval.results import too_perfect_warnings

TINY = dict(num_seen=20, num_unseen=5, num_train=240, num_test=80, feature_dim=16, num_topics=4)
FILES = ("train", "zsl_test", "gzsl_test")


def _layout(path):
    """The tiny NUS-WIDE layout with every label known (0 -> -1): a {0, 1} copy then holds the same labels."""
    root = generate_nuswide_layout(path / "NUS-WIDE", **TINY)
    for key in FILES:
        with h5py.File(root / NUSWIDE_FILES[key], "r+") as f:
            y = f["labels"][()]
            f["labels"][...] = np.where(y == 0, -1, y)
    return root


def _to_binary(root):
    for key in FILES:
        with h5py.File(root / NUSWIDE_FILES[key], "r+") as f:
            y = f["labels"][()]
            f["labels"][...] = (y > 0).astype(y.dtype)


def _load(root, **kw):
    dm = MultiLabelDataModule(root=str(root), **kw)
    dm.load()
    return dm


def _labels(store):
    return torch.cat([y for _, y in store.chunks(64, labels_only=True)])


def test_a_binary_file_is_refused_with_the_convention(tmp_path):
    root = _layout(tmp_path)
    _to_binary(root)
    with pytest.raises(DataError) as e:
        _load(root)
    msg = str(e.value)
    assert NUSWIDE_FILES["train"] in msg and "{0, 1}-coded" in msg
    assert "+1, a negative as -1 and an unknown one as 0" in msg and "data.label_coding=binary" in msg


def test_label_coding_binary_reads_the_same_labels_as_the_clean_file(tmp_path):
    clean = _load(_layout(tmp_path / "clean")).split("test")
    root = _layout(tmp_path / "binary")
    _to_binary(root)
    coded = _load(root, label_coding="binary").split("test")
    for name in ("train", "eval_zsl", "eval_gzsl"):
        assert torch.equal(_labels(getattr(coded, name)), _labels(getattr(clean, name))), name


def test_binary_coding_refuses_a_pm1_file_and_unknown_codings(tmp_path):
    root = _layout(tmp_path)
    with pytest.raises(DataError, match="already"):
        _load(root, label_coding="binary")
    with pytest.raises(ConfigError, match="data.label_coding"):
        MultiLabelDataModule(root=str(root), label_coding="01")


def test_too_perfect_map_warns_only_with_many_labels():
    info = {"label_mode": "multi", "num_unseen": 81, "num_classes": 1006}
    warns = too_perfect_warnings({"zsl_mAP": 100.0, "gzsl_mAP": 56.9}, info)
    assert len(warns) == 1 and warns[0].startswith("zsl_mAP = 100.00 over 81 labels")
    assert too_perfect_warnings({"zsl_mAP": 100.0}, {**info, "num_unseen": 3}) == []  # 3 labels: can happen
    assert too_perfect_warnings({"zsl_t1": 100.0}, {"label_mode": "single", "num_unseen": 50}) == []
