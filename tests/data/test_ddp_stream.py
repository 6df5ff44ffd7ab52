"""Data parallel over a streamed multi-label file: two CPU processes (torch.distributed, gloo), each streaming
its own shard of chunks into a DDP-wrapped linear layer; every row is seen exactly once per epoch across the
ranks, the ranks run the same number of steps, and the replicas stay equal; and ``trainer=ddp`` (Lightning) on
such a file runs the sharded number of steps per rank."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT
from zsl_lightning.data.multi_label import MultiLabelDataModule
from zsl_lightning.data.synthetic_ml import generate_nuswide_layout

WORKER = r"""
import json, os, sys
import torch
import torch.distributed as dist
from zsl_lightning.data.loaders import MultiLabelBatchLoader
from zsl_lightning.data.multi_label import MultiLabelDataModule
from zsl_lightning.data.samplers import RandomBatches

root, chunk_rows = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
dm = MultiLabelDataModule(root=root, in_memory=False, chunk_rows=chunk_rows, buffer_rows=100)
dm.load()
split = dm.split("test")
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(split.feature_dim, len(split.train_cols)))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
out = {}
for epoch in (0, 1):
    loader = MultiLabelBatchLoader(split, RandomBatches(batch_size=4, batches_per_step=1), 0, lambda: epoch, rank,
                                   "cpu", world_size=world)
    seen, steps = torch.zeros(len(split.train), dtype=torch.long), 0
    for batch in loader:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch["x"][0]), (batch["target"][0] > 0).float())
        opt.zero_grad()
        loss.backward()  # DDP averages the gradients of the ranks here
        opt.step()
        seen.index_add_(0, batch["idx"].flatten(), torch.ones(batch["idx"].numel(), dtype=torch.long))
        steps += 1
    mine = seen.clone()
    dist.all_reduce(seen)
    counts = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([steps]))
    out[epoch] = {"seen": seen.tolist(), "mine": mine.nonzero().flatten().tolist(), "steps": [int(c) for c in counts]}
w = model.module.weight.detach().clone()
ws = [torch.zeros_like(w) for _ in range(world)]
dist.all_gather(ws, w)
out["replicas_equal"] = all(torch.equal(ws[0], v) for v in ws)
out["rows"] = len(split.train)
print(json.dumps(out), flush=True)
dist.barrier()
os._exit(0)  # gloo's teardown (destroy_process_group, or the exit that runs it) hung now and then
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two processes importing torch (~19 s of CPU), minutes of wall time on a loaded machine
def test_two_process_ddp_streams_each_row_once_per_epoch(tmp_path):
    root = generate_nuswide_layout(tmp_path / "NUS-WIDE", num_seen=20, num_unseen=5, num_train=480, num_test=40,
                                   feature_dim=8, num_topics=4)
    dm = MultiLabelDataModule(root=str(root), in_memory=False)
    dm.load()
    n, cr = len(dm.split("test").train), 40
    assert n == 480  # every generated image has a positive: 12 chunks of 40 rows, 6 per rank, 60 batches of 4
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2",
               OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(root), str(cr)], cwd=ROOT, text=True,
                              env=dict(env, RANK=str(r)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for r in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    res = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    assert res[0]["rows"] == n
    for e in ("0", "1"):
        seen = torch.tensor(res[0][e]["seen"])
        steps = res[0][e]["steps"]
        assert steps[0] == steps[1] > 0  # equal steps: no rank waits on a collective the other never calls
        assert int(seen.max()) == 1  # no row twice in an epoch, across the ranks
        assert int(seen.min()) == 1 and steps[0] == n // 8  # every row once
        assert not set(res[0][e]["mine"]) & set(res[1][e]["mine"])  # each rank reads its own rows
    assert set(res[0]["0"]["mine"]) != set(res[0]["1"]["mine"])  # a new shard every epoch
    assert res[0]["replicas_equal"] and res[1]["replicas_equal"]


@pytest.mark.slow  # a two-process Lightning run (~15 s on a quiet machine)
def test_lightning_ddp_on_a_streamed_multilabel_file_shards_the_epoch(tmp_path, cache_dir):
    """``trainer=ddp`` on two CPU processes over a streamed file: the run completes and each rank runs the
    sharded number of steps (about half a single process's), read from the CSV log."""
    import csv

    from tests.helpers import compose_cfg
    from tests.test_cli import train
    from zsl_lightning.data.loaders import MultiLabelBatchLoader
    from zsl_lightning.data.samplers import RandomBatches
    from zsl_lightning.pipeline import build_datamodule

    data = ["data=synthetic_ml", "data.in_memory=false", "data.chunk_rows=256"]
    run_dir = tmp_path / "ddp"
    r = train(["debug=fast", "method=flf_clswgan", *data, "trainer=ddp", "trainer.accelerator=cpu",
               "trainer.devices=2", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"],
              tmp_path, cache_dir, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run_dir / "results.json").read_text())["headline"]
    split = build_datamodule(compose_cfg(["method=flf_clswgan", *data], tmp_path / "cfg", cache_dir)).split("test")
    plan = RandomBatches(batch_size=64, batches_per_step=5)
    single = len(MultiLabelBatchLoader(split, plan, 0, lambda: 0, 0, "cpu"))
    sharded = len(MultiLabelBatchLoader(split, plan, 0, lambda: 0, 0, "cpu", world_size=2))
    assert sharded < 0.55 * single
    with open(run_dir / "csv" / "test" / "metrics.csv") as f:
        steps = {int(row["epoch"]): int(row["step"]) for row in csv.DictReader(f)}
    assert abs((steps[1] - steps[0]) - sharded) <= 1  # steps of one epoch, as logged
