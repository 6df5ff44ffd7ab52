"""scripts/convert_coco.py and scripts/convert_openimages.py on tiny inputs in the public formats; their
output loads through data=coco / data=openimages' datamodule."""

import csv
import importlib.util
import json

import h5py
import numpy as np

from tests.helpers import ROOT
from zsl_lightning.data.multi_label import MultiLabelDataModule

SCRIPTS = ROOT / "scripts"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _glove(path, words, dim=4):
    rng = np.random.default_rng(0)
    path.write_text("".join(f"{w} {' '.join(f'{v:.3f}' for v in rng.random(dim))}\n" for w in sorted(words)))


def _features(path, ids, dim=6, strings=False):
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=np.random.default_rng(1).random((len(ids), dim)).astype(np.float32))
        f.create_dataset("image_ids", data=np.array(ids, dtype=h5py.string_dtype()) if strings else np.array(ids))


def test_convert_coco(tmp_path):
    conv = _script("convert_coco")
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(["person", "dog", "hot dog", "cat"])]
    unseen = ["hot dog", "cat"]

    def ann(path, labels):
        images = [{"id": i} for i in labels]
        anns = [{"image_id": i, "category_id": c} for i, cs in labels.items() for c in cs]
        path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))

    ann(tmp_path / "tr.json", {1: [1], 2: [1, 2], 3: [2, 4], 4: [1, 2, 2]})  # image 3 has an unseen class
    ann(tmp_path / "va.json", {10: [1, 3], 11: [2], 12: [4], 13: []})
    _features(tmp_path / "tr.h5", [1, 2, 3, 4])
    _features(tmp_path / "va.h5", [10, 11, 12, 13])
    _glove(tmp_path / "glove.txt", {"person", "dog", "hot", "cat"})
    out = conv.convert(tmp_path / "tr.json", tmp_path / "va.json", tmp_path / "tr.h5", tmp_path / "va.h5",
                       tmp_path / "glove.txt", tmp_path / "coco", unseen)
    dm = MultiLabelDataModule(root=str(out), name="COCO", label_space="h5", max_positives=None)
    dm.load()
    assert (dm.info["num_seen"], dm.info["num_unseen"], dm.info["num_train_images"]) == (2, 2, 3)
    split = dm.split("test")
    assert split.class_names == ["person", "dog", "hot dog", "cat"]
    assert len(split.eval_zsl) == 2 and len(split.eval_gzsl) == 3
    assert split.eval_gzsl.y.tolist()[0] == [1, -1, 1, -1]


def test_convert_openimages(tmp_path):
    conv = _script("convert_openimages")
    cls = tmp_path / "classes"
    cls.mkdir()
    (cls / "classes-trainable.txt").write_text("/m/a\n/m/b\n/m/c\n")
    (cls / "class-descriptions.csv").write_text("/m/a,Apple\n/m/b,Big cat\n/m/c,Car\n/m/u,Umbrella\n/m/v,Van\n")
    import pickle

    with open(cls / "unseen_labels.pkl", "wb") as f:
        pickle.dump(np.array(["/m/x", "/m/u", "/m/v"], dtype=object), f)
    (cls / "top_400_unseen.csv").write_text("\ufeff1\n2\n")

    def labels(path, rows):
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["ImageID", "Source", "LabelName", "Confidence"])
            w.writerows(rows)

    labels(tmp_path / "tr.csv", [("i1", "h", "/m/a", 1), ("i1", "h", "/m/b", 0), ("i2", "h", "/m/c", 1),
                                 ("i3", "h", "/m/a", 0)])
    labels(tmp_path / "te.csv", [("t1", "h", "/m/u", 1), ("t1", "h", "/m/a", 0), ("t2", "h", "/m/b", 1),
                                 ("t3", "h", "/m/v", 0)])
    _features(tmp_path / "tr.h5", ["i1", "i2", "i3"], strings=True)
    _features(tmp_path / "te.h5", ["t1", "t2", "t3"], strings=True)
    _glove(tmp_path / "glove.txt", {"apple", "big", "cat", "car", "umbrella", "van"})
    conv.main(["--train-labels", str(tmp_path / "tr.csv"), "--test-labels", str(tmp_path / "te.csv"),
               "--train-features", str(tmp_path / "tr.h5"), "--test-features", str(tmp_path / "te.h5"),
               "--glove", str(tmp_path / "glove.txt"), "--out", str(tmp_path / "oi"), "--classes", str(cls),
               "--chunk", "2"])
    dm = MultiLabelDataModule(root=str(tmp_path / "oi"), name="OpenImages", label_space="h5", max_positives=None)
    dm.load()
    assert (dm.info["num_seen"], dm.info["num_unseen"]) == (3, 2)
    split = dm.split("test")
    assert len(split.train) == 2  # i3 has no positive
    assert split.class_names == ["Apple", "Big cat", "Car", "Umbrella", "Van"]
    assert split.eval_zsl.y.tolist() == [[1, 0]]  # t1: Umbrella +1, Van unknown
    assert split.eval_gzsl.y.tolist() == [[-1, 0, 0, 1, 0], [0, 1, 0, 0, 0]]


def test_convert_nuswide_standard(tmp_path):
    """scripts/convert_nuswide_standard.py: ground-truth files → labels_81 beside the released training file
    (features linked, not copied), the row-order check against Train_Tags1k.dat, --labels-npy, --in-place."""
    import pytest

    from zsl_lightning.data.multilabel_format import NUSWIDE_FILES, STANDARD_FILES, read_lines
    from zsl_lightning.data.synthetic_ml import generate_nuswide_layout

    conv = _script("convert_nuswide_standard")
    root = generate_nuswide_layout(tmp_path / "NUS-WIDE", num_seen=12, num_unseen=4, num_train=60, num_test=20,
                                   feature_dim=8, num_topics=3)
    (root / STANDARD_FILES["nuswide"]).unlink()  # the generator's own Table-4 file: the released files lack it
    concepts = read_lines(root / NUSWIDE_FILES["concepts"])
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (60, 4))
    gt = tmp_path / "gt"
    gt.mkdir()
    for j, c in enumerate(concepts):
        (gt / f"Labels_{c}_Train.txt").write_text("".join(f"{v}\n" for v in y[:, j]))
    with h5py.File(root / NUSWIDE_FILES["train"], "r") as f:
        tags = (f["labels"][()] > 0).astype(int)  # TagList1k here = the 12 seen tags
    dat = tmp_path / "Train_Tags1k.dat"
    dat.write_text("".join("\t".join(map(str, r)) + "\n" for r in tags))

    out = conv.convert(root, groundtruth=gt, tags_dat=dat)
    assert out == root / STANDARD_FILES["nuswide"]
    with h5py.File(out, "r") as f, h5py.File(root / NUSWIDE_FILES["train"], "r") as g:
        assert isinstance(f.get("features", getlink=True), h5py.ExternalLink)  # no copy of the features
        assert np.array_equal(f["features"][()], g["features"][()])
        assert f["labels_81"].dtype == np.int8 and np.array_equal(f["labels_81"][()], np.where(y > 0, 1, -1))
    dm = MultiLabelDataModule(root=str(root), mode="standard")
    dm.load()
    assert dm.info["num_seen"] == 4

    dat.write_text("".join("\t".join(map(str, r)) + "\n" for r in tags[::-1]))  # rows in another order
    with pytest.raises(SystemExit, match="not in TrainImagelist order"):
        conv.convert(root, groundtruth=gt, tags_dat=dat, out=tmp_path / "never.h5")
    assert not (tmp_path / "never.h5").exists()
    (gt / f"Labels_{concepts[0]}_Train.txt").write_text("1\n0\n")
    with pytest.raises(SystemExit, match="2 lines but the training file has 60 rows"):
        conv.convert(root, groundtruth=gt)

    np.save(tmp_path / "y.npy", np.where(y > 0, 1, -1))
    conv.convert(root, labels_npy=tmp_path / "y.npy", in_place=True)
    with h5py.File(root / NUSWIDE_FILES["train"], "r") as f:
        assert np.array_equal(f["labels_81"][()], np.where(y > 0, 1, -1))
    dm = MultiLabelDataModule(root=str(root), mode="standard", files={"train_standard": NUSWIDE_FILES["train"]})
    dm.load()
    assert dm.info["num_train_images"] == 60
