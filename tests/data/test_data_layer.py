"""The multi-label data layer after its split by concern: one preprocessing for both label modes, the split's
API for methods (no store access), one batch contract with ``idx`` when streaming, feature maps kept whole,
HDF5 read errors that name the file and dataset, the score dtype choice, and ``data.mode`` dispatch."""

import h5py
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from tests.data.test_multilabel_data import load, nuswide, standard_layout
from tests.helpers import compose_cfg
from zsl_lightning.data.loaders import MultiLabelBatchLoader
from zsl_lightning.data.multi_label import MultiLabelDataModule, StandardMultiLabelDataModule
from zsl_lightning.data.multilabel_format import NUSWIDE_FILES
from zsl_lightning.data.preprocessing import MinMax, fit_preprocessing
from zsl_lightning.data.samplers import RandomBatches
from zsl_lightning.errors import ConfigError, DataError
from zsl_lightning.eval.multi_label import scores_dtype


# ------------------------------------------------------------------------------ one preprocessing
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minmax_is_bit_identical_to_the_single_array_formula(dtype):
    rng = np.random.default_rng(1)
    train, test = (rng.random((37, 5)) * 7 - 2).astype(dtype), (rng.random((9, 5)) * 9 - 3).astype(dtype)
    train[:, 2] = 0.5  # a constant column: scale 1
    lo, hi = train.min(0), train.max(0)
    scale = hi - lo
    scale[scale == 0] = 1.0
    mx = float(((train - lo) / scale).max()) or 1.0
    want = ((test - lo) / scale / mx).astype(np.float32)  # the single-label reference formula
    got = fit_preprocessing(train, "minmax")(test)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    streamed = MinMax.fit(train[i : i + 8] for i in range(0, len(train), 8))  # chunks of 8, 8, 8, 8, 5 rows
    assert np.array_equal(streamed(test), want)


def test_minmax_keeps_feature_map_shape():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    prep = MinMax.fit([x])
    assert prep.lo.shape == (3, 2, 2)
    assert np.array_equal(prep(x), np.stack([np.zeros((3, 2, 2)), np.ones((3, 2, 2))]))  # per element


# ------------------------------------------------------------------------------ the split's API for methods
def test_train_chunks_in_a_given_order(tmp_path):
    root = nuswide(tmp_path)
    mem = load(root, in_memory=True, chunk_rows=64).split("test")
    st = load(root, in_memory=False, chunk_rows=64).split("test")
    n = len(mem.train)
    assert st.num_train_chunks == mem.num_train_chunks == -(-n // 64)
    order = torch.tensor([2, 0, 1])
    got = list(st.train_chunks(order))
    for j, (x, y) in zip(order.tolist(), got, strict=True):
        assert torch.equal(x, mem.train.x[j * 64 : (j + 1) * 64]) and torch.equal(y, mem.train.y[j * 64 : (j + 1) * 64])
    assert sum(len(x) for x, _ in st.train_chunks()) == n


def test_sample_train_rows(tmp_path):
    root = nuswide(tmp_path)
    mem = load(root, in_memory=True, chunk_rows=64).split("test")
    st = load(root, in_memory=False, chunk_rows=64).split("test")
    n = len(mem.train)
    x, y = mem.sample_train_rows(None, torch.Generator())
    assert x is mem.train.x and y is mem.train.y and mem.sample_train_rows(n, torch.Generator())[0] is x
    with pytest.raises(ConfigError, match="method.gzsl_real_rows"):
        st.sample_train_rows(None, torch.Generator())
    order = torch.randperm(mem.num_train_chunks, generator=torch.Generator().manual_seed(5)).tolist()
    want = torch.cat([mem.train.x[j * 64 : (j + 1) * 64] for j in order])[:100]
    for split in (mem, st):  # whole chunks in the seeded order, then the first 100 rows
        xs, ys = split.sample_train_rows(100, torch.Generator().manual_seed(5))
        assert torch.equal(xs, want) and ys.shape == (100, len(mem.train_cols))


# ------------------------------------------------------------------------------ one batch contract
@pytest.mark.parametrize("in_memory", [True, False])
def test_batches_carry_idx_of_their_rows(tmp_path, in_memory):
    root = nuswide(tmp_path)
    ref = load(root, in_memory=True).split("test")
    split = load(root, in_memory=in_memory, chunk_rows=32, buffer_rows=64).split("test")
    plan = RandomBatches(batch_size=16, batches_per_step=2)
    batches = list(MultiLabelBatchLoader(split, plan, 0, lambda: 0, 0, torch.device("cpu")))
    assert len(batches) > 3
    for b in batches:
        assert set(b) == {"x", "target", "idx"} and b["idx"].shape == (2, 16) and b["target"].dtype == torch.float32
        assert torch.equal(b["x"], ref.train.x[b["idx"]]) and torch.equal(b["target"], ref.train.y[b["idx"]].float())


# ------------------------------------------------------------------------------ feature maps
def test_feature_maps_keep_their_shape_and_equal_the_flat_features(tmp_path):
    flat_root = nuswide(tmp_path / "flat")
    map_root = nuswide(tmp_path / "maps")
    for key in ("train", "zsl_test", "gzsl_test"):  # 16-d features stored as 4 x 2 x 2 maps
        with h5py.File(map_root / NUSWIDE_FILES[key], "r+") as f:
            x = f["features"][()]
            del f["features"]
            f.create_dataset("features", data=x.reshape(len(x), 4, 2, 2))
    flat = load(flat_root, in_memory=True).split("test")
    for in_memory in (True, False):
        dm = load(map_root, in_memory=in_memory, chunk_rows=32, buffer_rows=64)
        assert dm.info["feature_shape"] == [4, 2, 2] and dm.info["feature_dim"] == 16
        split = dm.split("test")
        assert split.feature_shape == (4, 2, 2)
        x = torch.cat([x for x, _ in split.train_chunks()])
        assert torch.equal(x.flatten(1), flat.train.x)  # per-element MinMax = per-column MinMax
        b = next(iter(MultiLabelBatchLoader(split, RandomBatches(8, 2), 0, lambda: 0, 0, torch.device("cpu"))))
        assert b["x"].shape == (2, 8, 4, 2, 2)


# ------------------------------------------------------------------------------ errors and choices
def test_hdf5_read_error_names_file_and_dataset(tmp_path):
    root = nuswide(tmp_path)
    split = load(root, in_memory=False).split("test")
    with h5py.File(root / NUSWIDE_FILES["train"], "r+") as f:
        del f["features"]  # the file changed after the split was built
    with pytest.raises(DataError, match=r"nus_seen_train_vgg19\.h5.*dataset 'features'"):
        next(split.train_chunks())


def test_scores_dtype_choice(capsys):
    # 1000 x 1000 float32 scores = 4e6 B = 0.00373 GiB
    assert scores_dtype("auto", 0.004, "X (test)", (10, 10), (1000, 1000)) == "float32"
    assert scores_dtype("auto", 0.0037, "X (test)", (1000, 1000), (10, 10)) == "float16"
    assert "X (test): float32 evaluation scores would take 0.0 GB" in capsys.readouterr().err
    assert scores_dtype("float32", 1e-9, "X", (1000, 1000)) == "float32"
    assert scores_dtype("float16", 100.0, "X", (1, 1)) == "float16"


def test_data_mode_picks_the_datamodule_class(tmp_path):
    root, _, _ = standard_layout(tmp_path)
    assert type(MultiLabelDataModule(root=str(root))) is MultiLabelDataModule
    dm = MultiLabelDataModule(root=str(root), mode="standard")
    assert type(dm) is StandardMultiLabelDataModule and dm.tasks == ("std",) and dm.info["mode"] == "standard"
    with pytest.raises(ConfigError, match="data.mode must be zsl"):
        MultiLabelDataModule(root=str(root), mode="bogus")
    with pytest.raises(ConfigError, match="data.mode=zsl"):
        StandardMultiLabelDataModule(root=str(root), mode="zsl")
    cfg = compose_cfg(["data=nuswide", "data.mode=standard", f"data.root={root}"], tmp_path / "out")
    assert type(instantiate(cfg.data)) is StandardMultiLabelDataModule
