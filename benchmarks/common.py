"""What the benchmarks share: device sync and a random feature-level split of a given size."""

from __future__ import annotations

import torch


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
