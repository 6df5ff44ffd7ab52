"""Multi-label data path: the real NUS-WIDE / Open Images side files, tiny files in the released NUS-WIDE
layout and in the HDF5 layout of Open Images / MS COCO, streaming, and every bad input's error."""

import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tests.helpers import ROOT, rewrite_h5
from zsl_lightning.data.multi_label import MultiLabelDataModule
from zsl_lightning.data.multilabel_format import (
    NUSWIDE_FILES,
    RESOURCES,
    STANDARD_FILES,
    read_lines,
    read_nuswide_label_space,
    read_openimages_classes,
    write_h5_benchmark,
)
from zsl_lightning.data.samplers import RandomBatches
from zsl_lightning.data.synthetic_ml import generate_nuswide_layout
from zsl_lightning.errors import DataError, MissingFilesError

TINY = dict(num_seen=20, num_unseen=5, num_train=240, num_test=80, feature_dim=16, num_topics=4)


def nuswide(tmp_path, **kw) -> Path:
    return generate_nuswide_layout(tmp_path / "NUS-WIDE", **{**TINY, **kw})


def load(root, split="test", **kw) -> MultiLabelDataModule:
    dm = MultiLabelDataModule(root=str(root), **kw)
    dm.load()
    return dm


# ------------------------------------------------------------------------------ the real side files
def test_real_nuswide_label_space():
    src = RESOURCES / "nus-wide"
    space = read_nuswide_label_space(src / "TagList1k.txt", src / "Concepts81.txt",
                                     src / "NUS_WIDE_pretrained_w2v_glove-wiki-gigaword-300")
    assert (space.num_seen, space.num_unseen) == (925, 81)
    assert space.embeddings.shape == (1006, 300)
    assert np.allclose(np.linalg.norm(space.embeddings, axis=1), 1.0, atol=1e-5)
    assert not set(space.seen_names) & set(space.unseen_names)
    tags = read_lines(src / "TagList1k.txt")
    assert space.seen_names == [t for t in tags if t not in set(space.unseen_names)]  # TagList1k order


def test_real_openimages_class_lists():
    seen, unseen, names = read_openimages_classes(RESOURCES / "openimages-2018_04")
    assert (len(seen), len(unseen)) == (7186, 400)
    assert len(set(seen)) == 7186 and len(set(unseen)) == 400 and not set(seen) & set(unseen)
    assert all(m in names for m in seen + unseen)


# ------------------------------------------------------------------------------ tiny NUS-WIDE layout
def test_tiny_nuswide_layout_loads(tmp_path):
    root = nuswide(tmp_path)
    dm = load(root)
    info = dm.info
    assert (info["num_seen"], info["num_unseen"], info["feature_dim"]) == (20, 5, 16)
    split = dm.split("test")
    assert len(split.eval_zsl) == len(split.eval_gzsl) == 80
    x, y = next(split.train.chunks(1000))
    assert x.min() >= 0 and x.max() <= 1.0 + 1e-6  # MinMax x 1/max
    n_pos = (y > 0).sum(1)
    assert n_pos.min() >= 1 and n_pos.max() <= 10  # reference filter: 1..10 positives


def test_dev_split_holds_out_seen_labels_and_never_reads_test_files(tmp_path):
    root = nuswide(tmp_path)
    dm = load(root)
    dev = dm.split("dev")
    assert set(dev.unseen_classes.tolist()) <= set(range(20))  # pseudo-unseen labels are seen labels
    assert not set(dev.unseen_classes.tolist()) & set(dev.train_cols.tolist())
    assert len(dev.train) + len(dev.eval_zsl) <= 240
    for key in ("zsl_test", "gzsl_test"):
        (root / NUSWIDE_FILES[key]).unlink()
        (root / NUSWIDE_FILES[key]).write_bytes(b"not hdf5")
    # the dev split reads only the training file (the header check of the test files happened at load)
    assert len(MultiLabelDataModule.split(dm, "dev").eval_gzsl) == len(dev.eval_gzsl)


def test_max_positives_filter_is_switchable(tmp_path):
    root = nuswide(tmp_path, max_labels=8, mean_labels=6)
    with h5py.File(root / NUSWIDE_FILES["train"], "r+") as f:
        y = f["labels"][()]
        y[0] = 1  # 20 positives
        f["labels"][...] = y
    kept = len(load(root).split("test").train)
    assert len(load(root, max_positives=None).split("test").train) == kept + 1


def test_streaming_equals_in_memory(tmp_path):
    root = nuswide(tmp_path)
    mem = load(root, in_memory=True, chunk_rows=64).split("test")
    st = load(root, in_memory=False, chunk_rows=64, buffer_rows=96).split("test")
    assert mem.train.in_memory and not st.train.in_memory
    xm = torch.cat([x for x, _ in mem.train.chunks(64)])
    xs = torch.cat([x for x, _ in st.train.chunks(64)])
    assert torch.equal(xm, xs)


def test_train_label_sets_stream_a_subset_chosen_before_reading(tmp_path, monkeypatch):
    from zsl_lightning.data.multilabel_store import RowStore

    root = nuswide(tmp_path)
    mem = load(root, in_memory=True).split("test")
    st = load(root, in_memory=False, chunk_rows=16).split("test")
    full = mem.train.y > 0
    assert torch.equal(st.train_label_sets(), full) and torch.equal(mem.train_label_sets(), full)
    # the same rows, in the same order, as subsampling the whole matrix would give (old behaviour)
    expected = full[torch.randperm(len(full), generator=torch.Generator().manual_seed(7))[:50]]
    assert torch.equal(mem.train_label_sets(50, seed=7), expected)
    reads = []
    real_read = RowStore.read_chunk

    def spy(self, j, chunk_rows, labels_only=False):
        reads.append((len(self.rows[j * chunk_rows : (j + 1) * chunk_rows]), labels_only))
        return real_read(self, j, chunk_rows, labels_only)

    monkeypatch.setattr(RowStore, "read_chunk", spy)
    assert torch.equal(st.train_label_sets(50, seed=7), expected)
    assert reads and all(labels_only and n <= 16 for n, labels_only in reads)  # labels only, one chunk at a time
    reads.clear()
    st.train_label_sets(1, seed=7)
    assert len(reads) == 1  # chunks without a chosen row are not read


def test_eval_scores_dtype_auto_is_float32_unless_over_budget(tmp_path, capsys):
    root = nuswide(tmp_path)
    assert load(root).split("test").eval_scores_dtype == "float32"
    # 80 test images x 25 labels x 4 B = 8 kB > 1e-6 GB
    assert load(root, eval_scores_max_gb=1e-6).split("test").eval_scores_dtype == "float16"
    assert "float16" in capsys.readouterr().err
    assert load(root, eval_scores_dtype="float32", eval_scores_max_gb=1e-6).split("test").eval_scores_dtype == "float32"


def test_streaming_batches_are_deterministic_and_bounded(tmp_path):
    from zsl_lightning.data.loaders import MultiLabelBatchLoader

    root = nuswide(tmp_path)
    split = load(root, in_memory=False, chunk_rows=32, buffer_rows=64).split("test")
    plan = RandomBatches(batch_size=16, batches_per_step=2)

    def epoch(seed):
        return [b["x"].clone() for b in MultiLabelBatchLoader(split, plan, seed, lambda: 0, 0, torch.device("cpu"))]

    a, b = epoch(0), epoch(0)
    assert len(a) > 3 and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert all(t.shape[:2] == (2, 16) for t in a)
    assert not all(torch.equal(u, v) for u, v in zip(a, epoch(1), strict=False))


# ------------------------------------------------------------------------------ the HDF5 layout (Open Images / COCO)
def test_h5_layout_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    s, u, d = 6, 3, 8
    y_tr = np.where(rng.random((50, s)) < 0.3, 1, -1)
    y_tr[:, 0] = 1
    y_te = np.where(rng.random((20, s + u)) < 0.3, 1, -1)
    y_te[:5, :2] = 0  # unknown
    feats = lambda n: rng.random((n, d)).astype(np.float32)  # noqa: E731
    write_h5_benchmark(tmp_path, [f"s{i}" for i in range(s)], [f"u{i}" for i in range(u)], rng.random((s, 5)),
                       rng.random((u, 5)), {"train": (feats(50), y_tr), "zsl_test": (feats(20), y_te[:, s:]),
                                            "gzsl_test": (feats(20), y_te)})
    dm = load(tmp_path, label_space="h5", name="COCO", top_k=[3, 5])
    assert (dm.info["num_seen"], dm.info["num_unseen"], dm.info["embedding_dim"]) == (6, 3, 5)
    split = dm.split("test")
    assert split.class_names[:2] == ["s0", "s1"] and split.class_names[-1] == "u2"
    ys = split.eval_gzsl.y
    assert (ys == 0).sum() == 10 and ys.dtype == torch.int8


# ------------------------------------------------------------------------------ bad inputs
def test_missing_files_are_named(tmp_path):
    with pytest.raises(MissingFilesError) as e:
        load(tmp_path / "nowhere")
    msg = str(e.value)
    for rel in NUSWIDE_FILES.values():
        assert Path(rel).name in msg
    assert "Generative_MLZSL" in msg


def test_cli_missing_nuswide_exits_cleanly(tmp_path):
    r = subprocess.run([sys.executable, "train.py", "method=clf_vaegan", "data=nuswide",
                        f"data.root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}", "logger=none"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "Traceback" not in out
    for name in ("nus_seen_train_vgg19.h5", "nus_zsl_test_vgg19.h5", "nus_gzsl_test_vgg19.h5", "TagList1k.txt",
                 "Concepts81.txt", "NUS_WIDE_pretrained_w2v_glove-wiki-gigaword-300"):
        assert name in out, name


def _edit(root, key, fn):
    rewrite_h5(root / NUSWIDE_FILES[key], fn)


@pytest.mark.parametrize("tamper,needle", [
    (lambda d: d["features"].__setitem__((3, 2), np.nan), "NaN/inf"),
    (lambda d: d["labels"].__setitem__((1, 1), 2.0), "labels must be +1"),
    (lambda d: d.__setitem__("labels", d["labels"][:, :-1]), "expected 20"),
    (lambda d: d.__setitem__("labels", d["labels"][:-1]), "rows"),
    (lambda d: d.pop("features"), "no dataset"),
])
def test_bad_training_file(tmp_path, tamper, needle):
    root = nuswide(tmp_path)
    _edit(root, "train", tamper)
    with pytest.raises(DataError, match=None) as e:
        load(root).split("test")
    assert needle in str(e.value)


def test_bad_gzsl_file_columns(tmp_path):
    root = nuswide(tmp_path)
    _edit(root, "gzsl_test", lambda d: d.__setitem__("labels", d["labels"][:, :20]))
    with pytest.raises(DataError, match="expected 25"):
        load(root)


def test_glove_pickle_mismatch(tmp_path):
    root = nuswide(tmp_path)
    with open(root / NUSWIDE_FILES["glove"], "rb") as f:
        tags, concepts = pickle.load(f)
    with open(root / NUSWIDE_FILES["glove"], "wb") as f:
        pickle.dump([tags[:-1], concepts], f)
    with pytest.raises(DataError, match="tag vectors"):
        load(root)


def test_seen_unseen_overlap_in_h5_embeddings(tmp_path):
    y = np.ones((4, 2))
    write_h5_benchmark(tmp_path, ["a", "b"], ["b"], np.ones((2, 3)), np.ones((1, 3)),
                       {"train": (np.ones((4, 2)), y), "zsl_test": (np.ones((4, 2)), y[:, :1]),
                        "gzsl_test": (np.ones((4, 2)), np.ones((4, 3)))})
    with pytest.raises(DataError, match="both seen and unseen"):
        load(tmp_path, label_space="h5")


def test_no_valid_training_image(tmp_path):
    root = nuswide(tmp_path)
    _edit(root, "train", lambda d: d.__setitem__("labels", -np.ones_like(d["labels"])))
    with pytest.raises(DataError, match="positive"):
        load(root).split("test")


# ------------------------------------------------------------------------------ standard mode (Table 4)
def standard_layout(tmp_path, n_test_without=7, **kw) -> tuple[Path, np.ndarray, np.ndarray]:
    """The tiny NUS-WIDE layout plus its Table-4 file, written by scripts/convert_nuswide_standard.py from
    NUS-WIDE-style ground truth (Labels_<concept>_Train.txt). The concept labels are a fixed linear
    function of the features (learnable); the first ``n_test_without`` test images get no positive concept.
    Returns (root, train labels_81, test labels over the concepts)."""
    import importlib.util

    root = nuswide(tmp_path, **kw)
    concepts = read_lines(root / NUSWIDE_FILES["concepts"])
    rng = np.random.default_rng(5)
    with h5py.File(root / NUSWIDE_FILES["train"], "r") as f:
        x_tr = f["features"][()]
    w = rng.standard_normal((x_tr.shape[1], len(concepts)))
    cut = np.quantile(x_tr @ w, 0.75, axis=0)

    def concept_labels(x):
        return np.where(x @ w > cut, 1, -1).astype(np.int8)

    y_tr = concept_labels(x_tr)
    gt = tmp_path / "Groundtruth" / "TrainTestLabels"
    gt.mkdir(parents=True)
    for j, c in enumerate(concepts):
        (gt / f"Labels_{c}_Train.txt").write_text("".join(f"{int(v > 0)}\n" for v in y_tr[:, j]))
    with h5py.File(root / NUSWIDE_FILES["zsl_test"], "r+") as f:
        y_te = concept_labels(f["features"][()])
        y_te[:n_test_without] = -1
        f["labels"][...] = y_te
    spec = importlib.util.spec_from_file_location("conv_std", ROOT / "scripts" / "convert_nuswide_standard.py")
    conv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conv)
    conv.convert(root, groundtruth=gt)
    return root, y_tr, y_te


def test_standard_mode_trains_and_tests_on_the_concepts(tmp_path):
    root, y_tr, y_te = standard_layout(tmp_path)
    dm = load(root, mode="standard")
    assert dm.tasks == ("std",)
    info = dm.info
    assert (info["num_seen"], info["num_unseen"], info["num_classes"], info["mode"]) == (5, 0, 5, "standard")
    has_pos = (y_te > 0).any(1)
    assert info["num_test_images"] == int(has_pos.sum()) <= 80 - 7  # LESA: test images without a concept dropped
    split = dm.split("test")
    full = load(root)  # the zsl-mode view of the same files
    assert split.class_names == full.split("test").class_names[20:]  # the 81 concepts (here 5), Concepts81 order
    assert torch.allclose(split.class_embeddings, full.split("test").class_embeddings[20:])
    assert split.seen_classes.tolist() == split.train_cols.tolist() == split.eval_gzsl_cols.tolist() == list(range(5))
    assert len(split.unseen_classes) == 0
    assert [t[0] for t in split.eval_tasks] == ["std"] and split.eval_tasks[0][1] == "gzsl"
    n_pos = (y_tr > 0).sum(1)
    kept = (n_pos >= 1) & (n_pos <= 10)
    assert torch.equal(split.train.y, torch.as_tensor(y_tr[kept]))  # labels_81, not the 925 tags
    assert torch.equal(split.eval_gzsl.y, torch.as_tensor(y_te[has_pos]))
    with h5py.File(root / NUSWIDE_FILES["zsl_test"], "r") as f:  # test features MinMax-scaled like training
        x_te = torch.as_tensor(f["features"][()][has_pos])
    assert split.eval_gzsl.x.shape == x_te.shape and split.eval_gzsl.x.max() <= 1.5


def test_standard_mode_dev_split_is_a_row_holdout_of_the_training_file(tmp_path):
    root, y_tr, _ = standard_layout(tmp_path)
    dm = load(root, mode="standard")
    dev = dm.split("dev")
    assert dev.eval_prefix == "val" and len(dev.unseen_classes) == 0 and len(dev.train_cols) == 5
    n_val = round(0.2 * len(y_tr))
    tail = y_tr[-n_val:]
    assert torch.equal(dev.eval_gzsl.y, torch.as_tensor(tail[(tail > 0).any(1)]))
    assert dev.train.rows.max() < len(y_tr) - n_val and dev.eval_gzsl.rows.min() >= len(y_tr) - n_val
    # no test file is read for the dev split
    (root / NUSWIDE_FILES["zsl_test"]).write_bytes(b"not hdf5")
    assert len(MultiLabelDataModule.split(dm, "dev").eval_gzsl) == len(dev.eval_gzsl)


def test_standard_mode_names_what_is_missing(tmp_path):
    root = nuswide(tmp_path)
    (root / STANDARD_FILES["nuswide"]).unlink()  # the generator writes it; the released files do not have it
    with pytest.raises(MissingFilesError) as e:  # the released files alone: no 81-concept training labels
        load(root, mode="standard")
    msg = str(e.value)
    assert "nus_std_train_vgg19.h5" in msg and "convert_nuswide_standard.py" in msg and "labels_81" in msg
    # a training file without the dataset: the message names the key, the file and the script
    with pytest.raises(DataError) as e:
        load(root, mode="standard", files={"train_standard": NUSWIDE_FILES["train"]})
    msg = str(e.value)
    assert "'labels_81'" in msg and "nus_seen_train_vgg19.h5" in msg and "convert_nuswide_standard.py" in msg
    assert "labels_81" not in str(load(root).info)  # zsl mode does not need the file


def test_standard_mode_bad_inputs(tmp_path):
    root, _, _ = standard_layout(tmp_path)
    std = root / STANDARD_FILES["nuswide"]
    with h5py.File(std, "r+") as f:
        y = f["labels_81"][()]
        del f["labels_81"]
        f.create_dataset("labels_81", data=y[:, :-1])
    with pytest.raises(DataError, match="expected 5"):
        load(root, mode="standard")
    (root / NUSWIDE_FILES["train"]).rename(root / "moved.h5")  # the external link's target
    with pytest.raises(DataError, match="cannot be opened"):
        load(root, mode="standard")
