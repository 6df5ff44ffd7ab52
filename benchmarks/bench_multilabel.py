#!/usr/bin/env python
"""Multi-label data path on a NUS-WIDE-sized file: peak memory and throughput of streaming.

Writes a random training file of ``--rows`` x ``--dim`` float32 features (default: NUS-WIDE's VGG19 train
set, 161,789 x 4,096 = 2.65 GB) plus label files in the released layout (925 / 81 labels), then
1. fits the MinMax preprocessing by streaming (one pass),
2. runs one epoch of training batches (batch 64, 5 critic batches per step) with ``in_memory=false``
   (``--no-epoch`` skips it),
3. optionally (``--clf``) times training steps of the paper-sized CLF-f-VAEGAN generator on those batches
   (and states their %-of-peak: ``common.efficiency``),
4. optionally (``--eval``) runs the evaluation at NUS-WIDE's test size (``--test-rows`` 107,859 by default
   then): a random linear scorer (4,096 → 81 / 1,006) over the streamed ZSL and GZSL test files, chunk by
   chunk, then mAP and P / R / F1 @ 3, 5 — what every evaluation of a method costs beyond its classifier,
and prints rows/s and the peak resident memory of each phase (Linux: the process's high-water mark is reset
at the start of a phase) and of the whole process. A benchmark, not a test.

``--ddp W`` instead runs a data-parallel streamed epoch on W CPU processes (torch.distributed, gloo): it writes
a ``--rows`` x ``--dim`` file (default 1,048,576 x 64), every rank streams its own shard of chunks
(``MultiLabelBatchLoader(world_size=W)``) into a DDP-wrapped linear layer, and it prints each rank's rows/s
and whether every row was seen exactly ``batches_per_step`` times (once per pass) across the ranks.

  python benchmarks/bench_multilabel.py [--rows 161789] [--dim 4096] [--workdir /tmp/bench_ml] [--clf]
  python benchmarks/bench_multilabel.py --rows 16384 --no-epoch --eval      # the evaluation case alone
  python benchmarks/bench_multilabel.py --ddp 2                             # 2-process streamed DDP epoch
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

# measure this checkout's package, not whichever zsl_lightning the interpreter has installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import efficiency  # noqa: E402  benchmarks/common.py (the script's folder is on sys.path)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _status_gb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return None


def start_phase() -> float:
    """Reset the process's peak RSS (Linux: writing 5 to /proc/self/clear_refs resets VmHWM to the current
    RSS) and return the current RSS in GiB, so :func:`phase_peak_gb` is the peak of the phase that follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_gb("VmRSS") or 0.0


def phase_peak_gb() -> float:
    """Peak RSS since :func:`start_phase` (GiB); the process's lifetime peak where VmHWM cannot be reset."""
    hwm = _status_gb("VmHWM")
    return hwm if hwm is not None else peak_rss_gb()


def report_phase(name: str, start_gb: float) -> None:
    peak = phase_peak_gb()
    print(f"  {name}: peak RSS {peak:.2f} GiB (RSS at its start {start_gb:.2f} GiB, growth {peak - start_gb:.2f} GiB)")


def write_files(root: Path, rows: int, dim: int, test_rows: int) -> None:
    import h5py

    from zsl_lightning.data.multilabel_format import NUSWIDE_FILES, RESOURCES

    for key in ("taglist", "concepts", "glove"):
        (root / NUSWIDE_FILES[key]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RESOURCES / "nus-wide" / Path(NUSWIDE_FILES[key]).name, root / NUSWIDE_FILES[key])
    rng = np.random.default_rng(0)
    for key, n, labels in (("train", rows, 925), ("zsl_test", test_rows, 81), ("gzsl_test", test_rows, 1006)):
        path = root / NUSWIDE_FILES[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            fx = f.create_dataset("features", (n, dim), dtype="f4", chunks=(1024, dim))
            fy = f.create_dataset("labels", (n, labels), dtype="f4", chunks=(1024, labels))
            for i in range(0, n, 8192):
                m = min(8192, n - i)
                fx[i : i + m] = rng.random((m, dim), dtype=np.float32)
                y = np.where(rng.random((m, labels)) < 3 / labels, 1.0, -1.0).astype(np.float32)
                y[:, 0] = 1.0
                fy[i : i + m] = y


def evaluate(split, dim: int) -> None:
    """Score the streamed test files with a random linear layer and compute every metric (both tasks)."""
    from zsl_lightning.eval.multi_label import evaluate_task

    before = peak_rss_gb()
    print(f"evaluation: {len(split.eval_gzsl):,} test images, streamed={not split.eval_gzsl.in_memory}, scores "
          f"{split.eval_scores_dtype}, chunk_rows {split.chunk_rows:,}; peak RSS so far {before:.2f} GiB")
    g = torch.Generator().manual_seed(0)
    for task, cols in (("zsl", split.eval_zsl_cols), ("gzsl", split.eval_gzsl_cols)):
        w, b = torch.randn(dim, len(cols), generator=g) / dim**0.5, torch.zeros(len(cols))
        t = time.perf_counter()
        m = evaluate_task(lambda x, w=w, b=b: x.flatten(1) @ w + b, split, task, torch.device("cpu"))
        n, c = len(split.eval_gzsl), len(cols)
        print(f"  {task}: {n:,} x {c:,} scores ({n * c * 5 / 2**30:.2f} GiB as float32 + int8 labels) in "
              f"{time.perf_counter() - t:.1f} s; mAP {m[f'{task}_mAP']:.2f} (random weights); "
              f"peak RSS {peak_rss_gb():.2f} GiB")


def streamed_epoch(split, plan, dim: int) -> None:
    """One streamed training epoch (batches only, no model): rows/s and the phase's peak RSS beside the
    shuffle buffer's own size (features, int8 labels, int64 positions)."""
    from zsl_lightning.data.loaders import MultiLabelBatchLoader

    buffer_gb = (split.buffer_rows + split.chunk_rows) * (dim * 4 + len(split.train_cols) + 8) / 2**30
    t, n, at = time.perf_counter(), 0, start_phase()
    for batch in MultiLabelBatchLoader(split, plan, 0, lambda: 0, 0, torch.device("cpu")):
        n += batch["x"].shape[0] * batch["x"].shape[1]
    dt = time.perf_counter() - t
    print(f"one streamed epoch: {n:,} rows in {dt:.1f} s = {n / dt:,.0f} rows/s; buffer {split.buffer_rows:,} + "
          f"{split.chunk_rows:,} rows = {buffer_gb:.2f} GiB")
    report_phase("streamed epoch", at)


def write_ddp_file(root: Path, rows: int, dim: int, labels: int = 64) -> None:
    """The ``label_space: h5`` layout (int8 labels, Open Images' format) with ``rows`` training rows."""
    from zsl_lightning.data.multilabel_format import write_h5_benchmark

    rng = np.random.default_rng(0)
    x = rng.random((rows, dim), dtype=np.float32)
    y = np.where(rng.random((rows, labels), dtype=np.float32) < 3 / labels, 1, -1).astype(np.int8)
    y[:, 0] = 1
    te = rng.random((256, dim), dtype=np.float32)
    yt = np.where(rng.random((256, labels + 16)) < 0.1, 1, -1).astype(np.int8)
    write_h5_benchmark(root, [f"s{i}" for i in range(labels)], [f"u{i}" for i in range(16)],
                       rng.random((labels, 300)), rng.random((16, 300)),
                       {"train": (x, y), "zsl_test": (te, yt[:, labels:]), "gzsl_test": (te, yt)})


def _ddp_worker(root: str, out: str, batch: int, k: int) -> None:
    """One rank (``RANK`` / ``WORLD_SIZE`` / ``MASTER_*`` from the environment): its shard of the streamed file
    into a DDP-wrapped linear layer (BCE), one epoch."""
    import json
    import os

    import torch.distributed as dist

    from zsl_lightning.data.loaders import MultiLabelBatchLoader
    from zsl_lightning.data.multi_label import MultiLabelDataModule
    from zsl_lightning.data.samplers import RandomBatches

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    dm = MultiLabelDataModule(root=root, name="bench", label_space="h5", in_memory=False)
    split = dm.split("test")
    loader = MultiLabelBatchLoader(split, RandomBatches(batch_size=batch, batches_per_step=k), 0, lambda: 0, rank,
                                   "cpu", world_size=world)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(split.feature_dim, len(split.train_cols)))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    seen = torch.zeros(len(split.train), dtype=torch.int32)
    dist.barrier()
    t, rows = time.perf_counter(), 0
    for b in loader:
        for i in range(k):  # k optimizer steps per loader step, as a WGAN's n_critic critic batches
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(b["x"][i]), (b["target"][i] > 0).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
        seen.index_add_(0, b["idx"].flatten(), torch.ones(b["idx"].numel(), dtype=torch.int32))
        rows += b["idx"].numel()
    dt = time.perf_counter() - t
    dist.all_reduce(seen)
    stats = [None] * world
    dist.all_gather_object(stats, {"rank": rank, "rows": rows, "seconds": dt, "steps": len(loader)})
    if rank == 0:
        Path(out).write_text(json.dumps({"ranks": stats, "max_seen": int(seen.max()), "n": len(split.train),
                                         "rows_seen": int((seen > 0).sum()), "k": k}))
    dist.barrier()
    os._exit(0)  # gloo's teardown (destroy_process_group, or the exit that runs it) hung now and then here


def ddp_benchmark(a) -> None:
    """``--ddp W``: the streamed data-parallel epoch on 1 and on W CPU processes."""
    import json
    import os
    import socket
    import subprocess

    root = Path(a.workdir) / "ddp"
    if not (a.keep and root.exists()):
        t = time.perf_counter()
        write_ddp_file(root, a.rows, a.dim)
        print(f"wrote {a.rows:,} x {a.dim} training rows, 64 int8 labels ({a.rows * (a.dim * 4 + 64) / 2**30:.2f} GiB) "
              f"in {time.perf_counter() - t:.0f} s")
    for world in sorted({1, a.ddp}):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        out = root / f"ddp{world}.json"
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world))
        procs = [subprocess.Popen([sys.executable, __file__, "--ddp-rank", str(root), str(out)],
                                  env=dict(env, RANK=str(r))) for r in range(world)]
        if any(p.wait() for p in procs):
            raise SystemExit(f"a rank of the {world}-process run failed")
        r = json.loads(out.read_text())
        per_rank = [s["rows"] / s["seconds"] for s in r["ranks"]]
        print(f"{world} rank(s), batch 128 x 5 per step: " + ", ".join(
            f"rank {s['rank']} {s['rows']:,} rows in {s['seconds']:.1f} s ({s['steps']} steps)" for s in r["ranks"]))
        print(f"  per-rank rate {min(per_rank):,.0f}-{max(per_rank):,.0f} rows/s, together "
              f"{sum(s['rows'] for s in r['ranks']) / max(s['seconds'] for s in r['ranks']):,.0f} rows/s; "
              f"each row seen at most {r['max_seen']}x (= {r['k']} passes), "
              f"{r['rows_seen']:,} of {r['n']:,} rows seen")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=161_789)
    p.add_argument("--dim", type=int, default=4096)
    p.add_argument("--test-rows", type=int, default=None, help="test images (default 2,048; 107,859 with --eval)")
    p.add_argument("--workdir", default="/tmp/bench_ml")
    p.add_argument("--keep", action="store_true", help="reuse / keep the generated files")
    p.add_argument("--clf", action="store_true", help="also time paper-sized CLF-f-VAEGAN steps")
    p.add_argument("--eval", action="store_true", help="also run a NUS-WIDE-sized ZSL + GZSL evaluation")
    p.add_argument("--no-epoch", action="store_true", help="skip the streamed training epoch")
    p.add_argument("--ddp", type=int, default=0, metavar="W",
                   help="instead: a streamed DDP epoch on 1 and W CPU processes (default --rows 1,048,576 --dim 64)")
    p.add_argument("--ddp-rank", nargs=2, help=argparse.SUPPRESS)  # internal: one rank of --ddp (root, out)
    a = p.parse_args()
    if a.ddp_rank:
        _ddp_worker(*a.ddp_rank, batch=128, k=5)
        return
    if a.ddp:
        if "--rows" not in sys.argv:
            a.rows = 1_048_576
        if "--dim" not in sys.argv:
            a.dim = 64
        ddp_benchmark(a)
        return
    if a.test_rows is None:
        a.test_rows = 107_859 if a.eval else 2048
    from zsl_lightning.data.loaders import MultiLabelBatchLoader
    from zsl_lightning.data.multi_label import MultiLabelDataModule
    from zsl_lightning.data.samplers import RandomBatches

    root = Path(a.workdir) / "NUS-WIDE"
    if not (a.keep and root.exists()):
        t = time.perf_counter()
        write_files(root, a.rows, a.dim, a.test_rows)
        print(f"wrote {a.rows:,} x {a.dim} training and 2 x {a.test_rows:,} x {a.dim} test features "
              f"({a.rows * a.dim * 4 / 2**30:.2f} + 2 x {a.test_rows * a.dim * 4 / 2**30:.2f} GiB) in "
              f"{time.perf_counter() - t:.0f} s")
    base = peak_rss_gb()
    dm = MultiLabelDataModule(root=str(root), in_memory=False)
    t, at = time.perf_counter(), start_phase()
    split = dm.split("test")  # label filter + streamed MinMax fit
    print(f"split (filter + MinMax fit, streamed): {time.perf_counter() - t:.1f} s, {len(split.train):,} rows")
    report_phase("split", at)
    plan = RandomBatches(batch_size=64, batches_per_step=5)
    if not a.no_epoch:
        streamed_epoch(split, plan, a.dim)
    print(f"process peak RSS {peak_rss_gb():.2f} GiB (before loading: {base:.2f} GiB); file "
          f"{a.rows * a.dim * 4 / 2**30:.2f} GiB")
    if a.eval:
        evaluate(split, a.dim)
    if a.clf:
        from zsl_lightning.nn.fusion import CLF

        at = start_phase()
        g = CLF(300, 300, a.dim)
        print(f"CLF parameters: {sum(p.numel() for p in g.parameters()) / 1e6:.1f} M")
        emb = split.class_embeddings[split.train_cols]
        first = next(iter(MultiLabelBatchLoader(split, plan, 0, lambda: 0, 0, torch.device("cpu"))))
        x, y = first["x"], first["target"]  # the batch also carries "idx"
        opt = torch.optim.Adam(g.parameters(), 1e-4)
        def clf_step(i=0):
            out = g(torch.randn(64, 300), (y[i] > 0).float(), emb)
            loss = torch.nn.functional.binary_cross_entropy(out, x[i].clamp(0, 1))
            opt.zero_grad(), loss.backward(), opt.step()

        t = time.perf_counter()
        for i in range(3):
            clf_step(i)
        dt = (time.perf_counter() - t) / 3
        print(f"CLF generator step (batch 64, CPU): {dt:.2f} s; process peak RSS {peak_rss_gb():.2f} GiB")
        report_phase("CLF steps (model, Adam state, one streamed batch)", at)
        print(f"CLF generator step {efficiency(clf_step, dt, 'cpu').line('%-of-peak')}")
    if not a.keep:
        shutil.rmtree(a.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
