"""The streaming multi-label loader's shuffle buffer: the same batches as the plain algorithm it replaced
(concatenate the chunks, permute, cut), float16 files buffered as float16, rank shards that partition the rows,
and peak memory that stays near the buffer's own size (slow)."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from tests.helpers import ROOT
from zsl_lightning.data.loaders import MultiLabelBatchLoader
from zsl_lightning.data.multi_label import MultiLabelDataModule
from zsl_lightning.data.multilabel_format import NUSWIDE_FILES
from zsl_lightning.data.samplers import RandomBatches, epoch_seed
from zsl_lightning.data.synthetic_ml import generate_nuswide_layout


def _split(root, **kw):
    dm = MultiLabelDataModule(root=str(root), in_memory=False, **kw)
    dm.load()
    return dm.split("test")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml") / "NUS-WIDE"
    return generate_nuswide_layout(root, num_seen=20, num_unseen=5, num_train=600, num_test=40, feature_dim=16,
                                   num_topics=4)


def _to_float16(root):
    """The same benchmark with float16 features (a copy of the training file)."""
    import shutil

    out = root.parent.parent / (root.parent.name + "_f16") / "NUS-WIDE"
    if not out.exists():
        shutil.copytree(root, out)
        with h5py.File(out / NUSWIDE_FILES["train"], "r+") as f:
            x = f["features"][()]
            del f["features"]
            f.create_dataset("features", data=x.astype(np.float16))
    return out


def reference_epoch(split, plan, seed):
    """The loader before the preallocated buffer, written plainly: per pass a random chunk order; chunks
    appended to a list; at ``buffer_rows`` the list is concatenated, permuted and cut into batches, the rest
    kept; ``k`` batches per step."""
    g = torch.Generator().manual_seed(epoch_seed(seed, 0, 0))
    k, b, cr = plan.batches_per_step, plan.batch_size, split.chunk_rows
    steps = max(1, (k * len(split.train)) // (k * b))
    parts, pending, out = [], [], []

    def drain():
        nonlocal parts
        x, y, p = (torch.cat(t) for t in zip(*parts, strict=True))
        perm = torch.randperm(len(x), generator=g)
        x, y, p = x[perm], y[perm], p[perm]
        full = len(x) // b * b
        pending.extend((x[i : i + b], y[i : i + b], p[i : i + b]) for i in range(0, full, b))
        parts = [(x[full:], y[full:], p[full:])]

    def emit():
        while len(pending) >= k and len(out) < steps:
            out.append([torch.stack(t) for t in zip(*pending[:k], strict=True)])
            del pending[:k]

    for _ in range(k):
        order = torch.randperm(split.num_train_chunks, generator=g).numpy()
        for j, (x, y) in zip(order, split.train_chunks(order), strict=True):
            parts.append((x, y, torch.arange(int(j) * cr, int(j) * cr + len(x))))
            if sum(len(t[0]) for t in parts) >= split.buffer_rows:
                drain()
            emit()
    if parts:
        drain()
    emit()
    return out


@pytest.mark.parametrize("float16", [False, True])
@pytest.mark.parametrize("prep", ["minmax", "l2"])
@pytest.mark.parametrize("cr,buffer,b,k", [(32, 64, 16, 2), (64, 96, 7, 5), (16, 10, 24, 3)])
def test_streamed_batches_equal_the_plain_algorithm(tiny, float16, prep, cr, buffer, b, k):
    split = _split(_to_float16(tiny) if float16 else tiny, chunk_rows=cr, buffer_rows=buffer, preprocess=prep)
    plan = RandomBatches(batch_size=b, batches_per_step=k)
    got = list(MultiLabelBatchLoader(split, plan, 5, lambda: 0, 0, torch.device("cpu")))
    want = reference_epoch(split, plan, 5)
    assert len(got) == len(want) == len(MultiLabelBatchLoader(split, plan, 5, lambda: 0, 0, "cpu")) > 2
    for g, (x, y, pos) in zip(got, want, strict=True):
        assert g["x"].dtype == torch.float32 and g["x"].shape == (k, b, 16)
        assert torch.equal(g["x"], x) and torch.equal(g["target"], y.float()) and torch.equal(g["idx"], pos)


def test_float16_file_is_buffered_in_float16_and_prepared_per_batch(tiny, monkeypatch):
    from zsl_lightning.data import shuffle_buffer

    split16, split32 = _split(_to_float16(tiny), chunk_rows=64), _split(tiny, chunk_rows=64)
    assert split16.train.raw_dtype == torch.float16 and split32.train.raw_dtype is None
    made = []
    real = shuffle_buffer.ShuffleBuffer._allocate

    def spy(self, x, y):
        real(self, x, y)
        made.append(self.x.dtype)

    monkeypatch.setattr(shuffle_buffer.ShuffleBuffer, "_allocate", spy)
    plan = RandomBatches(batch_size=8, batches_per_step=1)
    batch = next(iter(MultiLabelBatchLoader(split16, plan, 0, lambda: 0, 0, "cpu")))
    next(iter(MultiLabelBatchLoader(split32, plan, 0, lambda: 0, 0, "cpu")))
    assert made == [torch.float16, torch.float32]
    # prepared per batch = the chunk preprocessed as a whole (MinMax fitted in float32, rows of the file)
    x, _ = split16.train.read_chunk(0, len(split16.train))
    assert torch.equal(batch["x"][0], x[batch["idx"][0]])


def _rank_epochs(split, plan, world, epoch=0):
    return [list(MultiLabelBatchLoader(split, plan, 3, lambda: epoch, r, "cpu", world_size=world))
            for r in range(world)]


def test_rank_shards_partition_the_rows_every_epoch(tiny):
    split = _split(tiny, chunk_rows=50, buffer_rows=80)
    n = len(split.train)
    cr = [c for c in range(20, 80) if n % c == 0 and (n // c) % 2 == 0][0]  # whole chunks, as many per rank
    split = _split(tiny, chunk_rows=cr, buffer_rows=80)
    plan = RandomBatches(batch_size=1, batches_per_step=1)  # every row read is emitted
    firsts = []
    for epoch in (0, 1):
        ranks = _rank_epochs(split, plan, 2, epoch)
        idx = [torch.cat([b["idx"].flatten() for b in r]) for r in ranks]
        assert len(ranks[0]) == len(ranks[1]) == n // 2  # same number of steps on every rank
        both = torch.cat(idx)
        assert torch.equal(both.sort().values, torch.arange(n))  # each row exactly once across the ranks
        assert not set(idx[0].tolist()) & set(idx[1].tolist())
        firsts.append(idx[0])
    assert not torch.equal(firsts[0].sort().values, firsts[1].sort().values)  # a new shard each epoch
    # one process reads every chunk whatever its rank (a rank without world_size is not a shard)
    alone = torch.cat([b["idx"].flatten() for b in MultiLabelBatchLoader(split, plan, 3, lambda: 0, 1, "cpu")])
    assert torch.equal(alone.sort().values, torch.arange(n))


def test_rank_shards_of_uneven_chunks_run_equal_steps_without_repeats(tiny):
    split = _split(tiny, chunk_rows=37, buffer_rows=60)  # the last chunk is short; chunks may not split evenly
    plan = RandomBatches(batch_size=8, batches_per_step=2)
    ranks = _rank_epochs(split, plan, 3)
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) >= 1
    for p in range(2):  # per pass: rows of different ranks never coincide
        seen = torch.cat([b["idx"][:, p].flatten() for r in ranks for b in r])
        assert len(seen) <= len(split.train)
    all_idx = torch.cat([b["idx"].flatten() for r in ranks for b in r])
    assert int(torch.bincount(all_idx).max()) <= 2  # at most once per pass
    single = list(MultiLabelBatchLoader(split, plan, 3, lambda: 0, 0, "cpu"))
    assert len(single) == len(split.train) // 8  # world_size 1 keeps its step count


def test_too_few_chunks_or_rows_for_the_ranks_is_a_config_error(tiny):
    from zsl_lightning.errors import ConfigError

    plan = RandomBatches(batch_size=16, batches_per_step=1)
    with pytest.raises(ConfigError, match="data.chunk_rows"):  # 2 chunks, 3 ranks: one would read nothing
        MultiLabelBatchLoader(_split(tiny, chunk_rows=300), plan, 0, lambda: 0, 0, "cpu", world_size=3)
    split = _split(tiny, chunk_rows=290)  # 3 chunks of 290, 290, 20 rows: a rank may get 20 < 32 rows
    with pytest.raises(ConfigError, match="fewer than a batch"):
        MultiLabelBatchLoader(split, RandomBatches(batch_size=32), 0, lambda: 0, 0, "cpu", world_size=2)


RSS_SCRIPT = r"""
import dataclasses, json, sys
from pathlib import Path
import torch
from zsl_lightning.data.loaders import MultiLabelBatchLoader
from zsl_lightning.data.multi_label import MultiLabelDataModule
from zsl_lightning.data.samplers import RandomBatches, epoch_seed

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
dm = MultiLabelDataModule(root=sys.argv[1], in_memory=False, chunk_rows=1024, buffer_rows=8192)
dm.load()
split = dm.split("test")
plan = RandomBatches(batch_size=64, batches_per_step=5)
for batch in MultiLabelBatchLoader(dataclasses.replace(split, buffer_rows=512), plan, 0, lambda: 0, 0, "cpu"):
    pass  # warm-up with a small buffer: code paths run once, so what follows measures data, not libraries
loader = MultiLabelBatchLoader(split, plan, 0, lambda: 0, 0, "cpu")
Path("/proc/self/clear_refs").write_text("5")
start, n = status("VmRSS"), 0
for batch in loader:
    n += batch["x"].numel()
print(json.dumps({"start": start, "peak": status("VmHWM"), "values": n}))
"""


@pytest.mark.slow
def test_streamed_epoch_peak_rss_grows_by_about_one_buffer(tmp_path):
    """Regression check of memory, not of time: the RSS growth of a streamed epoch stays below 2x the buffer's
    own size (8,192 + 1,024 rows x 1,024 float32 = 36 MiB; the concatenate-and-permute loader took ~4x)."""
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux /proc to reset the peak RSS")
    root = generate_nuswide_layout(tmp_path / "NUS-WIDE", num_seen=20, num_unseen=5, num_train=40_000,
                                   num_test=40, feature_dim=1024, num_topics=4)
    r = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(root)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads(r.stdout.strip().splitlines()[-1])
    buffer_bytes = (8192 + 1024) * (1024 * 4 + 20 + 8)
    assert m["values"] > 0
    print("RSS growth / buffer size:", (m["peak"] - m["start"]) / buffer_bytes)
    assert m["peak"] - m["start"] < 2 * buffer_bytes, (m, buffer_bytes)
