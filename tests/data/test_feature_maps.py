"""Feature-map formats: cached multi-scale maps, the BiAM / LESA layout, image lists, synthetic_maps."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch

from zsl_lightning.data.biam_format import open_biam_nuswide
from zsl_lightning.data.feature_maps_format import (
    FeatureMapsFile,
    FeatureMapsWriter,
    inspect_feature_maps,
    train_val_ranges,
)
from zsl_lightning.data.image_list_format import ImageList, imagenet_normalize, write_image_list
from zsl_lightning.data.multilabel_format import (
    NUSWIDE_FILES,
    RESOURCES,
    read_lines,
    read_nuswide_label_space,
)
from zsl_lightning.data.synthetic_maps import MAPS_FILES, cached_synthetic_maps, generate_synthetic_maps
from zsl_lightning.errors import DataError, MissingFilesError

CH = {28: 3, 14: 4, 7: 5}


def _batch(rng, b, num_labels=6):
    maps = {s: rng.standard_normal((b, c, s, s)).astype(np.float32) * 10 for s, c in CH.items()}
    labels = rng.choice([-1, 0, 1], size=(b, num_labels), p=[0.6, 0.1, 0.3]).astype(np.int8)
    labels[:, 0] = -1  # every batch has negatives, as real files do
    return maps, labels


def _write(path, rng, sizes=(3, 2)):
    batches = [_batch(rng, b) for b in sizes]
    with FeatureMapsWriter(path, CH, 6, backbone="vgg19", input_size=224, chunk_rows=2) as w:
        for k, (m, y) in enumerate(batches):
            w.append({s: torch.from_numpy(v) for s, v in m.items()} if k else m, y,
                     [f"img{k}_{i}" for i in range(len(y))])
    maps = {s: np.concatenate([m[s] for m, _ in batches]) for s in CH}
    return maps, np.concatenate([y for _, y in batches])


# ----------------------------------------------------------------------------------------- cached maps


def test_cached_maps_round_trip(tmp_path):
    path = tmp_path / "train.h5"
    maps, labels = _write(path, np.random.default_rng(0))
    info = inspect_feature_maps(path, expected_labels=6)
    assert (info.num_rows, info.scales, info.channels) == (5, (28, 14, 7), CH)
    assert (info.backbone, info.input_size, info.feature_shape(14)) == ("vgg19", 224, (4, 14, 14))
    with h5py.File(path) as f:
        assert f["maps_28"].dtype == np.float16 and f["maps_28"].chunks[0] == 2 and f["labels"].dtype == np.int8
    store = FeatureMapsFile(path, expected_labels=6)
    got, y = store.read(1, 4)
    assert set(got) == {28, 14, 7} and got[7].dtype == torch.float32 and got[28].shape == (3, 3, 28, 28)
    np.testing.assert_array_equal(got[14].numpy(), maps[14][1:4].astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), labels[1:4])
    assert y.dtype == torch.int8
    only, _ = store.read(4, 5, scales=[7])
    assert list(only) == [7]
    assert store.image_names() == ["img0_0", "img0_1", "img0_2", "img1_0", "img1_1"]
    assert not (tmp_path / "train.h5.partial").exists()


def test_cached_maps_missing_file(tmp_path):
    with pytest.raises(MissingFilesError, match="nope.h5") as e:
        FeatureMapsFile(tmp_path / "nope.h5")
    assert "cache_feature_maps.py" in str(e.value)


def test_cached_maps_wrong_shape_and_missing_key(tmp_path):
    path = tmp_path / "m.h5"
    _write(path, np.random.default_rng(1))
    with h5py.File(path, "r+") as f:
        del f["maps_14"]
        f.create_dataset("maps_14", data=np.zeros((5, 4, 13, 13), np.float16))
    with pytest.raises(DataError, match=r"m\.h5.*'maps_14' has shape \(5, 4, 13, 13\)"):
        inspect_feature_maps(path)
    with h5py.File(path, "r+") as f:
        del f["labels"]
    with pytest.raises(DataError, match=r"m\.h5.*lacks dataset\(s\) \['labels'\]"):
        FeatureMapsFile(path)


def test_cached_maps_wrong_label_width_and_foreign_file(tmp_path):
    path = tmp_path / "m.h5"
    _write(path, np.random.default_rng(2))
    with pytest.raises(DataError, match=r"m\.h5.*6 columns, expected 925"):
        FeatureMapsFile(path, expected_labels=925)
    other = tmp_path / "plain.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("features", data=np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"plain\.h5.*not a cached-maps file"):
        inspect_feature_maps(other)
    (tmp_path / "garbage.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match=r"garbage\.h5.*as HDF5"):
        inspect_feature_maps(tmp_path / "garbage.h5")


def test_cached_maps_nan_named_with_rows(tmp_path):
    path = tmp_path / "m.h5"
    _write(path, np.random.default_rng(3))
    with h5py.File(path, "r+") as f:
        f["maps_7"][3, 0, 0, 0] = np.nan
    store = FeatureMapsFile(path)
    store.read(0, 3)  # rows without the NaN read fine
    with pytest.raises(DataError, match=r"m\.h5.*maps_7 rows 2\.\.4 contain NaN/inf \(first bad row 3"):
        store.read(2, 5)


def test_writer_rejects_nan_overflow_bad_and_01_labels(tmp_path):
    rng = np.random.default_rng(4)
    m, y = _batch(rng, 2)
    with pytest.raises(DataError, match="NaN/inf"):
        with FeatureMapsWriter(tmp_path / "a.h5", CH, 6, backbone="x", input_size=224) as w:
            m[28][1, 0, 0, 0] = 1e6  # above float16's 65,504: becomes inf
            w.append(m, y, ["a", "b"])
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "a.h5.partial").exists()
    m, _ = _batch(rng, 2)
    with FeatureMapsWriter(tmp_path / "b.h5", CH, 6, backbone="x", input_size=224) as w:
        with pytest.raises(DataError, match=r"b\.h5.*\{0, 1\}-coded"):
            w.append(m, np.array([[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]]), ["a", "b"])
        with pytest.raises(DataError, match=r"b\.h5.*found \[2\]"):
            w.append(m, np.array([[-1, 2, 0, 0, 1, 0]] * 2), ["a", "b"])
        w.append(m, np.array([[-1, 1, 0, 0, 1, 0]] * 2), ["a", "b"])
    assert inspect_feature_maps(tmp_path / "b.h5").num_rows == 2


def test_incomplete_file_is_refused(tmp_path):
    path = tmp_path / "c.h5"
    _write(path, np.random.default_rng(5))
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = 0
    with pytest.raises(DataError, match=r"c\.h5.*incomplete"):
        FeatureMapsFile(path)


def test_train_val_ranges_follow_biam():
    assert train_val_ranges(5) == (range(0, 4), range(4, 5))
    assert train_val_ranges(161789)[0].stop == 129431


# ----------------------------------------------------------------------------------------- BiAM / LESA


def _biam(root, names, labels=925, with_pickle=True, feature_shape=(512, 196)):
    (root / "features").mkdir(parents=True, exist_ok=True)
    feats = {}
    with h5py.File(root / "features" / "nus_wide_train.h5", "w") as f:
        for k, n in enumerate(names):
            feats[n] = np.full(feature_shape, float(k), np.float32)
            feats[n][:, 5] = -k  # position (0, 5) of the 14 x 14 map
            f.create_dataset(f"{n}-features", data=feats[n])
            lab = -np.ones(labels, np.int8)
            lab[k] = 1
            f.create_dataset(f"{n}-labels", data=lab)
            f.create_dataset(f"{n}-labels_81", data=np.where(np.arange(81) == k, 1, -1).astype(np.int8))
    if with_pickle:
        with open(root / "img_names.pkl", "wb") as f:
            pickle.dump({"img_names": list(names)}, f)
    return feats


def test_biam_reader_order_split_and_values(tmp_path):
    names = ["z_img", "b_img", "m_img", "a_img", "q_img"]  # extraction order, not alphabetical
    _biam(tmp_path, names)
    store, train = open_biam_nuswide(tmp_path, "train")
    _, val = open_biam_nuswide(tmp_path, "val")
    assert (list(train), list(val)) == ([0, 1, 2, 3], [4]) and store.names == names
    x, y = store.read([3, 0])
    assert x.shape == (2, 512, 14, 14) and x.dtype == torch.float32 and y.shape == (2, 925) and y.dtype == torch.int8
    assert x[0, 0, 1, 1] == 3 and x[0, 0, 0, 5] == -3 and x[1, 7, 13, 13] == 0
    assert y[0, 3] == 1 and y[0].sum() == 1 - 924
    _, y81 = store.read([1], labels_key="labels_81")
    assert y81.shape == (1, 81) and y81[0, 1] == 1


def test_biam_without_pickle_uses_key_order(tmp_path):
    _biam(tmp_path, ["z_img", "b_img", "a_img"], with_pickle=False)
    store, idx = open_biam_nuswide(tmp_path, "trainval")
    assert store.names == ["a_img", "b_img", "z_img"] and "alphabetical" in store.order_source
    assert list(idx) == [0, 1, 2]


def test_biam_errors_name_file_and_key(tmp_path):
    with pytest.raises(MissingFilesError, match=r"nus_wide_train\.h5(.|\n)*BiAM"):
        open_biam_nuswide(tmp_path / "nowhere", "train")
    _biam(tmp_path / "t", ["a", "b"], feature_shape=(196, 512))
    with pytest.raises(DataError, match=r"nus_wide_train\.h5.*'a-features' has shape \(196, 512\).*transposed"):
        open_biam_nuswide(tmp_path / "t", "train")
    _biam(tmp_path / "w", ["a", "b"], labels=81)
    with pytest.raises(DataError, match=r"nus_wide_train\.h5.*'a-labels' has shape \(81,\)"):
        open_biam_nuswide(tmp_path / "w", "train")
    _biam(tmp_path / "k", ["a", "b"])
    with h5py.File(tmp_path / "k" / "features" / "nus_wide_train.h5", "r+") as f:
        del f["b-labels"]
        f["a-features"][0, 0] = np.nan
    store, _ = open_biam_nuswide(tmp_path / "k", "trainval")
    with pytest.raises(DataError, match=r"nus_wide_train\.h5.*no key 'b-labels'"):
        store.read([1])
    with pytest.raises(DataError, match=r"nus_wide_train\.h5.*'a-features' \(image 0\) contains NaN"):
        store.read([0])
    (tmp_path / "c" / "features").mkdir(parents=True)
    (tmp_path / "c" / "features" / "nus_wide_train.h5").write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match=r"nus_wide_train\.h5.*as HDF5(.|\n)*BiAM"):
        open_biam_nuswide(tmp_path / "c", "train")


def test_biam_rejects_bad_label_values(tmp_path):
    _biam(tmp_path, ["a", "b"])
    with h5py.File(tmp_path / "features" / "nus_wide_train.h5", "r+") as f:
        f["b-labels"][0] = 3
    store, _ = open_biam_nuswide(tmp_path, "trainval")
    with pytest.raises(DataError, match=r"nus_wide_train\.h5:b-labels.*found \[3\]"):
        store.read([1])


# ----------------------------------------------------------------------------------------- image lists


def _images(root):
    from PIL import Image

    (root / "images" / "sub").mkdir(parents=True)
    specs = [("a.jpg", (320, 240), (200, 30, 30)), ("sub/b.png", (100, 150), (10, 220, 40)),
             ("c.jpg", (224, 224), (0, 0, 255)), ("d.png", (50, 60), (128, 128, 128))]
    for rel, size, color in specs:
        Image.new("RGB", size, color).save(root / "images" / rel)
    labels = np.array([[1, -1, 0], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]], np.int8)
    write_image_list(root / "list.h5", [r for r, _, _ in specs], labels, ["x", "y", "z"])
    return specs, labels


def test_image_list_decodes_resizes_and_labels(tmp_path):
    specs, labels = _images(tmp_path)
    lst = ImageList(tmp_path / "list.h5", expected_labels=3, label_names=["x", "y", "z"])
    x, y = lst.read([1, 0, 3])
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.uint8
    np.testing.assert_array_equal(y.numpy(), labels[[1, 0, 3]])
    # solid colours survive the resize; JPEG may shift a channel by a few levels
    for b, k in enumerate([1, 0, 3]):
        got = x[b].float().mean((1, 2))
        assert torch.allclose(got, torch.tensor(specs[k][2], dtype=torch.float32), atol=3)
    z = imagenet_normalize(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    assert torch.allclose(z[0, :, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]))


def test_image_list_errors(tmp_path):
    _images(tmp_path)
    with pytest.raises(DataError, match=r"list\.h5.*label_names differ.*column 1: 'y' vs 'q'"):
        ImageList(tmp_path / "list.h5", label_names=["x", "q", "z"])
    with pytest.raises(DataError, match=r"list\.h5.*3 columns, expected 925"):
        ImageList(tmp_path / "list.h5", expected_labels=925)
    (tmp_path / "images" / "c.jpg").write_bytes(b"not a jpeg")
    lst = ImageList(tmp_path / "list.h5")
    with pytest.raises(DataError, match=r"Could not decode image '.*c\.jpg' \(row 2 of '.*list\.h5'\)"):
        lst.read([2])
    (tmp_path / "images" / "sub" / "b.png").unlink()
    with pytest.raises(MissingFilesError, match=r"sub/b\.png(.|\n)*1 of the 4 images listed in '.*list\.h5'"):
        ImageList(tmp_path / "list.h5")
    with pytest.raises(MissingFilesError, match=r"other\.h5"):
        ImageList(tmp_path / "other.h5")
    with pytest.raises(DataError, match=r"found \[5\]"):
        write_image_list(tmp_path / "bad.h5", ["a.jpg"], np.array([[5, 1]]))


# ----------------------------------------------------------------------------------------- synthetic_maps


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return cached_synthetic_maps(tmp_path_factory.mktemp("synmaps"), {"seed": 0})


def test_synthetic_maps_layout_and_cache(synthetic_root):
    """(Its generation time is a benchmark figure, docs/data.md, not a test: timed tests fail on busy machines.)"""
    root = synthetic_root
    ls = read_nuswide_label_space(*(root / NUSWIDE_FILES[k] for k in ("taglist", "concepts", "glove")))
    assert (ls.num_seen, ls.num_unseen) == (150, 20)
    assert set(ls.unseen_names) <= set(read_lines(RESOURCES / "nus-wide" / "Concepts81.txt"))
    assert set(ls.seen_names) <= set(read_lines(RESOURCES / "nus-wide" / "TagList1k.txt")) - set(ls.unseen_names)
    tr = FeatureMapsFile(root / MAPS_FILES["train"], expected_labels=150, scales=[28, 14, 7])
    te = FeatureMapsFile(root / MAPS_FILES["test"], expected_labels=170)
    assert (len(tr), len(te), tr.info.channels) == (2000, 800, {28: 16, 14: 16, 7: 16})
    mtime = (root / MAPS_FILES["test"]).stat().st_mtime_ns
    assert cached_synthetic_maps(root.parent, {"seed": 0}) == root
    assert (root / MAPS_FILES["test"]).stat().st_mtime_ns == mtime


def test_synthetic_maps_deterministic(tmp_path):
    small = dict(num_seen=10, num_unseen=4, num_train=40, num_test=20)
    a, b, c = (generate_synthetic_maps(tmp_path / n, seed=s, **small) for n, s in (("a", 1), ("b", 1), ("c", 2)))
    ma, ya = FeatureMapsFile(a / MAPS_FILES["test"]).read(0, 20)
    mb, yb = FeatureMapsFile(b / MAPS_FILES["test"]).read(0, 20)
    mc, _ = FeatureMapsFile(c / MAPS_FILES["test"]).read(0, 20)
    assert all(torch.equal(ma[s], mb[s]) for s in (28, 14, 7)) and torch.equal(ya, yb)
    assert not torch.equal(ma[28], mc[28])
    assert read_lines(a / NUSWIDE_FILES["taglist"]) == read_lines(b / NUSWIDE_FILES["taglist"])


def _ap(scores, y):
    aps = []
    for j in range(y.shape[1]):
        known = y[:, j] != 0
        s, t = scores[known, j], y[known, j] > 0
        if t.any():
            t = t[torch.argsort(s, descending=True)].double()
            aps.append(float(((t.cumsum(0) / torch.arange(1, len(t) + 1)) * t).sum() / t.sum()))
    return float(np.mean(aps))


def _ridge(f, target, lam=1.0):
    return torch.linalg.solve(f.T @ f + lam * torch.eye(f.shape[1], dtype=f.dtype), f.T @ target)


def test_synthetic_maps_labels_are_local_and_follow_word_vectors(synthetic_root):
    """Global average pooling cannot separate a planted block from a decoy; per-channel max / min over the
    7 x 7 cells can. And the bilinear probe (features x M x word vector) fitted on seen labels ranks unseen
    labels far above chance."""
    root = synthetic_root
    ls = read_nuswide_label_space(*(root / NUSWIDE_FILES[k] for k in ("taglist", "concepts", "glove")))
    (mtr, ytr), (mte, yte) = (FeatureMapsFile(root / MAPS_FILES[k]).read(0, n) for k, n in (("train", 2000),
                                                                                          ("test", 800)))
    s = ls.num_seen
    emb = torch.from_numpy(ls.embeddings).double()

    def feats(m, local):
        x = m[7].flatten(2).double()
        return torch.cat([x.amax(2), -x.amin(2)], 1) if local else x.mean(2)

    res = {}
    for local in (False, True):
        f, ft = feats(mtr, local), feats(mte, local)
        mu, sd = f.mean(0), f.std(0)
        f, ft = ((v - mu) / sd for v in (f, ft))
        f, ft = (torch.cat([v, torch.ones(len(v), 1, dtype=v.dtype)], 1) for v in (f, ft))
        seen_map = _ap(ft @ _ridge(f, ytr.double()), yte[:, :s])
        m = _ridge(f, ytr.double() @ emb[:s]) @ torch.linalg.inv(emb[:s].T @ emb[:s] + 0.1 * torch.eye(300).double())
        res[local] = seen_map, _ap(ft @ m @ emb[s:].T, yte[:, s:])
    chance_seen = float((yte[:, :s] > 0).double().mean())
    chance_unseen = float((yte[:, s:] > 0).double().mean())
    assert res[True][0] > 1.4 * res[False][0] and res[True][0] > 10 * chance_seen
    assert res[True][1] > 3 * chance_unseen
