#!/usr/bin/env python
"""GBE-MLZSL: training speed and the memory of streaming a NUS-WIDE-sized cached-maps file.

1. ``--train`` (default on): images/s (and %-of-peak: FLOPs, achieved FLOP/s, share of the dense-matmul peak at
   the step's GEMM shapes, ``common.efficiency``) of GBE training steps (forward + Eq. 17 loss + backward + Adam step)
   at the paper's sizes (512 channels, n = 25 groups, d_w = 300, batch 96), on random multi-scale maps
   {28, 14, 7} ("maps", the cached-maps path) and on random 224 x 224 images through VGG19
   (``nn.backbone.VGG19MultiScale``, random weights; ``--trainable-backbone`` fine-tunes it, the paper's
   end-to-end setting). ``--device cuda`` when one is present.
2. ``--stream`` (default on): writes a cached-maps training file with NUS-WIDE's ROW count (161,789 x 925
   labels) through ``FeatureMapsWriter`` and a small test file, then builds the split with the datamodule
   (``data=nuswide_maps``, ``in_memory=false``) and streams one training epoch through
   ``MultiLabelBatchLoader`` (batch 96): rows/s and the process's peak resident memory. The full file at
   512 channels x 3 scales in float16 is ~170 GB, so ``--channels`` (per scale, default 8) reduces it;
   the buffers that bound memory scale with the channels (docs/benchmarks.md, "GBE-MLZSL").

  python benchmarks/bench_gbe.py --iters 2 --batch 96 --image-batch 8 --channels 8
  python benchmarks/bench_gbe.py --device cuda --iters 20 --no-stream
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

# measure this checkout's package, not whichever zsl_lightning the interpreter has installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_multilabel import peak_rss_gb  # noqa: E402
from common import efficiency, sync  # noqa: E402

SCALES = (28, 14, 7)


def random_targets(b: int, labels: int, g: torch.Generator) -> torch.Tensor:
    y = torch.where(torch.rand(b, labels, generator=g) < 3 / labels, 1.0, -1.0)
    y[:, 0] = 1.0
    return y


def time_training(kind: str, a, device: torch.device) -> None:
    """Images/s of ``a.iters`` GBE steps on random maps (``kind="maps"``) or images (``"images"``)."""
    from zsl_lightning.losses.gbe import gbe_loss
    from zsl_lightning.nn.backbone import VGG19MultiScale, preprocess
    from zsl_lightning.nn.gbe import GBE

    g = torch.Generator().manual_seed(0)
    b = a.batch if kind == "maps" else a.image_batch
    backbone = None
    if kind == "images":
        backbone = VGG19MultiScale(weights=None, trainable=a.trainable_backbone).to(device)
        images = torch.randint(0, 256, (b, 3, 224, 224), dtype=torch.uint8, generator=g).to(device)
    else:
        maps = {s: torch.relu(torch.randn(b, a.model_channels, s, s, generator=g)).to(device) for s in SCALES}
    model = GBE(in_channels=a.model_channels, word_dim=300, n_groups=25).to(device)
    params = [p for m in (model, backbone) if m is not None for p in m.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4, weight_decay=4e-3)
    words = torch.nn.functional.normalize(torch.randn(925, 300, generator=g), dim=1).to(device)
    target = random_targets(b, 925, g).to(device)

    def step():
        feats = backbone(preprocess(images)) if backbone is not None else maps
        loss = gbe_loss(model(feats), words, target)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up (allocations, cuDNN choice)
    sync(device)
    t = time.perf_counter()
    for _ in range(a.iters):
        step()
    sync(device)
    dt = (time.perf_counter() - t) / a.iters
    what = "maps 28/14/7" if kind == "maps" else f"224x224 images, VGG19 {'fine-tuned' if a.trainable_backbone else 'frozen'}"
    n_par = sum(p.numel() for p in params) / 1e6
    print(f"GBE step on {what}, batch {b}, {device}: {dt:.2f} s/step = {b / dt:.1f} images/s "
          f"({a.iters} steps after 1 warm-up; {n_par:.1f} M trained parameters); peak RSS {peak_rss_gb():.2f} GiB")
    print(f"GBE step on {what}: {efficiency(step, dt, device).line('%-of-peak')}")


def current_rss_gb() -> float:
    """Resident memory now (Linux /proc), unlike the peak that ``peak_rss_gb`` gives."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def write_nuswide(root: Path, rows: int, test_rows: int, channels: int, chunk_rows: int) -> float:
    """NUS-WIDE label files (the bundled resources) and random cached maps; returns the training file's GiB."""
    from zsl_lightning.data.feature_maps_format import FeatureMapsWriter
    from zsl_lightning.data.maps_benchmark import MAPS_FILES
    from zsl_lightning.data.multilabel_format import NUSWIDE_FILES, RESOURCES

    for key in ("taglist", "concepts", "glove"):
        (root / NUSWIDE_FILES[key]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RESOURCES / "nus-wide" / Path(NUSWIDE_FILES[key]).name, root / NUSWIDE_FILES[key])
    rng = np.random.default_rng(0)
    for part, n, labels in (("train", rows, 925), ("test", test_rows, 1006)):
        with FeatureMapsWriter(root / MAPS_FILES["cached"][part], {s: channels for s in SCALES}, labels,
                               backbone="random", input_size=224, chunk_rows=chunk_rows) as w:
            block = 2048
            for lo in range(0, n, block):
                m = min(block, n - lo)
                maps = {s: rng.random((m, channels, s, s), dtype=np.float32).astype(np.float16) for s in SCALES}
                y = np.where(rng.random((m, labels)) < 3 / labels, 1, -1).astype(np.int8)
                y[:, 0] = 1
                w.append(maps, y, [f"{part}_{i:06d}" for i in range(lo, lo + m)])
    return rows * channels * sum(s * s for s in SCALES) * 2 / 2**30


def stream(a) -> None:
    from zsl_lightning.data.loaders import MultiLabelBatchLoader
    from zsl_lightning.data.maps_benchmark import MapsDataModule
    from zsl_lightning.data.samplers import RandomBatches

    root = Path(a.workdir) / "NUS-WIDE"
    t = time.perf_counter()
    gib = write_nuswide(root, a.rows, a.test_rows, a.channels, a.chunk_rows)
    print(f"wrote {a.rows:,} training rows x {a.channels} channels x scales {SCALES} float16 ({gib:.2f} GiB) and "
          f"{a.test_rows:,} test rows in {time.perf_counter() - t:.0f} s "
          f"(at 512 channels: {gib * 512 / a.channels:.0f} GiB)")
    base, now = peak_rss_gb(), current_rss_gb()
    dm = MapsDataModule(root=str(root), source="cached", in_memory=False, chunk_rows=a.chunk_rows,
                        buffer_rows=a.buffer_rows)
    t = time.perf_counter()
    split = dm.split("test")
    print(f"split (label filter, streamed): {time.perf_counter() - t:.1f} s, {len(split.train):,} rows, "
          f"streamed={not split.train.in_memory}, chunk_rows {split.chunk_rows}, buffer_rows {split.buffer_rows}")
    packed = split.train.feature_shape[0]
    t, n = time.perf_counter(), 0
    for batch in MultiLabelBatchLoader(split, RandomBatches(batch_size=96), 0, lambda: 0, 0, torch.device("cpu")):
        n += batch["x"].shape[0] * batch["x"].shape[1]
    dt = time.perf_counter() - t
    buf_gib = (split.buffer_rows + split.chunk_rows) * packed * 4 / 2**30
    print(f"one streamed epoch (batch 96): {n:,} rows in {dt:.1f} s = {n / dt:,.0f} rows/s "
          f"({n * packed * 2 / dt / 2**20:,.0f} MiB/s of float16 maps read)")
    print(f"peak RSS {peak_rss_gb():.2f} GiB (before loading: peak {base:.2f}, current {now:.2f} GiB); packed row {packed:,} float32 "
          f"= {packed * 4 / 2**10:.1f} KiB; buffer + chunk {buf_gib:.3f} GiB "
          f"(at 512 channels: {buf_gib * 512 / a.channels:.2f} GiB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--iters", type=int, default=10, help="timed training steps (after one warm-up)")
    p.add_argument("--batch", type=int, default=96, help="batch of the maps case (paper: 96)")
    p.add_argument("--image-batch", type=int, default=96, help="batch of the images case (paper: 96)")
    p.add_argument("--model-channels", type=int, default=512, help="channels of the maps GBE reads (VGG19: 512)")
    p.add_argument("--trainable-backbone", action="store_true", help="fine-tune VGG19 (end to end)")
    p.add_argument("--no-train", action="store_true", help="skip the training-speed part")
    p.add_argument("--no-images", action="store_true", help="skip the VGG19 images case")
    p.add_argument("--no-stream", action="store_true", help="skip the streaming part")
    p.add_argument("--rows", type=int, default=161_789, help="training rows of the streamed file (NUS-WIDE)")
    p.add_argument("--test-rows", type=int, default=1024)
    p.add_argument("--channels", type=int, default=8, help="channels per scale of the streamed file")
    p.add_argument("--chunk-rows", type=int, default=256)
    p.add_argument("--buffer-rows", type=int, default=2048)
    p.add_argument("--workdir", default="/tmp/bench_gbe")
    a = p.parse_args()
    device = torch.device(a.device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} CPU threads")
    if not a.no_train:
        time_training("maps", a, device)
        if not a.no_images:
            time_training("images", a, device)
    if not a.no_stream:
        try:
            stream(a)
        finally:
            shutil.rmtree(a.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
