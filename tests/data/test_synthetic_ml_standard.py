"""``data=synthetic_ml data.mode=standard`` (Gupta et al. Table 4 on the embedded benchmark): the generator's
``nus_std_train_vgg19.h5`` holds the training images' unseen labels in the real layout, the split scores the U
unseen labels only on the right rows, and a fast clf_vaegan run reports ``std_*`` metrics."""

import h5py
import numpy as np
import torch

from tests.helpers import compose_cfg
from zsl_lightning.data.multi_label import MultiLabelDataModule
from zsl_lightning.data.multilabel_format import NUSWIDE_FILES, STANDARD_FILES, read_lines
from zsl_lightning.data.preprocessing import fit_preprocessing
from zsl_lightning.data.synthetic_ml import (
    StandardSyntheticMultiLabelDataModule,
    SyntheticMultiLabelDataModule,
    generate_nuswide_layout,
)

TINY = {"seed": 3, "num_seen": 20, "num_unseen": 5, "num_train": 120, "num_test": 60, "feature_dim": 16}


def test_standard_file_is_the_training_images_in_the_real_layout(tmp_path):
    """Same features as the training file, row for row; labels_81 = the generator's unseen labels of those rows
    (int8 ±1, no unknowns), so the 'seen' training file plus labels_81 is every label of an image."""
    root = generate_nuswide_layout(tmp_path / "ml", **TINY)
    with h5py.File(root / NUSWIDE_FILES["train"], "r") as f:
        x_tr, y_seen = f["features"][()], f["labels"][()]
    with h5py.File(root / STANDARD_FILES["nuswide"], "r") as f:
        assert sorted(f.keys()) == ["features", "labels_81"]
        assert np.array_equal(f["features"][()], x_tr)
        y81 = f["labels_81"][()]
        assert list(f.attrs["concepts"]) == read_lines(root / NUSWIDE_FILES["concepts"])
    assert y81.dtype == np.int8 and y81.shape == (120, 5) and set(np.unique(y81)) <= {-1, 1}
    n_lab = (y_seen > 0).sum(1) + (y81 > 0).sum(1)
    assert n_lab.min() >= 1 and n_lab.max() <= 5  # every image has 1..max_labels labels over seen + unseen
    assert (y81 > 0).any(0).all()  # each unseen label has training positives (topics mix seen and unseen)


def test_standard_split_uses_the_unseen_labels_on_the_right_rows(tmp_path):
    kw = {"cache_dir": str(tmp_path), "generator": TINY, "max_positives": 10}
    std = SyntheticMultiLabelDataModule(mode="standard", **kw)
    zsl = SyntheticMultiLabelDataModule(**kw)
    assert type(std) is StandardSyntheticMultiLabelDataModule and type(zsl) is SyntheticMultiLabelDataModule
    assert isinstance(std, MultiLabelDataModule) and std.tasks == ("std",) and std.root == zsl.root
    info = std.info
    assert (info["mode"], info["num_classes"], info["num_seen"], info["num_unseen"]) == ("standard", 5, 5, 0)
    with h5py.File(std.root / STANDARD_FILES["nuswide"], "r") as f:
        y81 = f["labels_81"][()]
    with h5py.File(std.root / NUSWIDE_FILES["zsl_test"], "r") as f:
        y_te = f["labels"][()]
    s, z = std.split("test"), zsl.split("test")
    train_rows = np.flatnonzero((y81 > 0).sum(1) >= 1)  # 1..10 positives; an image has at most 5 labels
    test_rows = np.flatnonzero((y_te > 0).any(1))
    assert 0 < len(test_rows) < 60 and info["num_test_images"] == len(test_rows)
    assert s.train.rows.tolist() == train_rows.tolist() and s.eval_gzsl.rows.tolist() == test_rows.tolist()
    assert torch.equal(s.train.y, torch.as_tensor(y81[train_rows]))
    assert torch.equal(s.eval_gzsl.y, torch.as_tensor(y_te[test_rows]).to(s.eval_gzsl.y.dtype))
    # the label ids 0..4 are the zsl split's unseen labels (names, embeddings), every one of them seen
    unseen = z.unseen_classes
    assert s.class_names == [z.class_names[int(c)] for c in unseen]
    assert torch.equal(s.class_embeddings, z.class_embeddings[unseen])
    assert s.seen_classes.tolist() == s.train_cols.tolist() == s.eval_gzsl_cols.tolist() == list(range(5))
    assert len(s.unseen_classes) == 0 and [t[0] for t in s.eval_tasks] == ["std"]
    # test features: the ZSL test file's rows, MinMax fitted on the standard split's training rows
    with h5py.File(std.root / STANDARD_FILES["nuswide"], "r") as f, h5py.File(std.root / NUSWIDE_FILES["zsl_test"]) as g:
        prep = fit_preprocessing(f["features"][()][train_rows], "minmax")
        assert torch.equal(s.eval_gzsl.x, torch.as_tensor(prep(g["features"][()][test_rows])))
    dev = std.split("dev")  # the last round(0.2 * 120) = 24 training rows validate
    assert dev.train.rows.max() < 96 and dev.eval_gzsl.rows.min() >= 96
    assert torch.equal(dev.eval_gzsl.y, torch.as_tensor(y81[96:][(y81[96:] > 0).any(1)]))


def test_clf_vaegan_standard_run_reports_std_metrics(tmp_path, cache_dir):
    from zsl_lightning.pipeline import run

    # 400 training images: ~1/3 have an unseen label, so the dev split still fills a batch of 64
    gen = [f"data.generator.{k}={v}" for k, v in {**TINY, "num_train": 400}.items()]
    over = ["method=clf_vaegan", "data=synthetic_ml", "data.mode=standard", "debug=fast", "method.epochs=1",
            "eval.classifier.epochs=1", *gen]
    res = run(compose_cfg(over, tmp_path / "out", cache_dir))
    keys = {"std_mAP", "std_mAP_labels", *(f"std_{m}@{k}" for m in ("P", "R", "F1") for k in (3, 5))}
    assert set(res["headline"]) == keys
    assert 0 < res["headline"]["std_mAP_labels"] <= 5 and 0 <= res["headline"]["std_mAP"] <= 100
    assert res["selection"]["monitors"] == {"std": "std_mAP"}
