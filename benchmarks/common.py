"""What the benchmarks share: their size options, device sync and a random feature-level split of a given size."""

from __future__ import annotations

import argparse

import torch


def size_parser(doc: str, sizes, default: list[str], iters_help: str) -> argparse.ArgumentParser:
    """The options every shape-sized benchmark takes: ``--sizes`` (keys of ``sizes``), ``--iters``, ``--device``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=default, choices=sorted(sizes))
    ap.add_argument("--iters", type=int, default=10, help=iters_help)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap


def sync(device: torch.device) -> None:
    """Wait for queued device work, so a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_split(n: int, d: int, a: int, s: int, u: int, device: torch.device):
    """A single-label split of ``n`` random training features (``d``-d, ``s`` seen classes, ``u`` unseen, ``a``-d
    class embeddings) and 100 evaluation rows each: the shapes of a benchmark, not its data."""
    from zsl_lightning.data.split import FeatureSplit

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, s, (n,), generator=g)
    return FeatureSplit("test", torch.rand(n, d, generator=g), y, torch.rand(100, d), y[:100],
                        torch.rand(100, d), torch.randint(s, s + u, (100,)), torch.rand(s + u, a),
                        torch.arange(s), torch.arange(s, s + u)).to(device)
