"""The pool of label sets from which unseen multi-label features are synthesised (Gupta et al. Sec. 3.2;
the released code's ``generate_fake_test_from_train_labels``).

From the training images' positive label sets (seen labels only):

* ``seen``: a share ``seen_fraction`` of the sets, unchanged (seen-only sets, for GZSL);
* ``unseen``: a share ``unseen_fraction`` with every label replaced by its nearest unseen label
  (Euclidean distance between the L2-normalised embeddings);
* ``mixed``: a share ``mixed_fraction`` where half of the labels (rounded down) are kept and the rest are
  mapped to their nearest unseen label;
* repeated ``repeats`` times with fresh random draws; finally every label of the label space that no set
  covers is added to as many random sets as the least-covered covered unseen label has.

The ZSL classifier trains on the sets without any seen label; the GZSL classifier on all of them.
Without unseen labels (standard multi-label classification, ``data.mode=standard``) only the ``seen`` sets
exist, and an uncovered label gets as many sets as the least-covered covered label.

Memory: the pool is a bool matrix (sets × labels); with NUS-WIDE's ~150k training sets and the default
shares (1 + 0.5 + 0.5) it is ~300k × 1,006 B ≈ 0.3 GB, and each set becomes ``syn_per_set`` synthetic
4,096-d features (``max_sets`` caps the sets; see docs/methods/multilabel.md, "Memory").
"""

from __future__ import annotations

import torch


def nearest_unseen(emb: torch.Tensor, seen: torch.Tensor, unseen: torch.Tensor) -> torch.Tensor:
    """For each seen id, the global id of the nearest unseen label (Euclidean on the embedding rows)."""
    d = torch.cdist(emb[seen].double(), emb[unseen].double())
    return unseen[d.argmin(1)]


def column_counts(mask: torch.Tensor, rows: int = 16384) -> torch.Tensor:
    """``mask.sum(0)`` for a bool matrix, ``rows`` rows at a time: torch's bool reductions first convert the
    whole operand to int64 (8 B per entry: 2.6 GB for a NUS-WIDE-sized pool)."""
    out = torch.zeros(mask.shape[1], dtype=torch.long)
    for i in range(0, len(mask), rows):
        out += mask[i : i + rows].sum(0)
    return out


def random_ranks(rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For entries grouped by ``rows`` (set ids), each entry's rank within its set in a uniformly random order.

    Exact for any number of sets: a random permutation, then a stable sort by set id (integer keys; a float
    key such as ``rows * 2.0 + u`` leaves ``u`` fewer bits as the set ids grow and ties the order)."""
    order = torch.argsort(torch.rand(len(rows), generator=generator))
    order = order[torch.argsort(rows[order], stable=True)]
    _, counts = torch.unique_consecutive(rows[order], return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.empty(len(rows), dtype=torch.long)
    rank[order] = torch.arange(len(rows)) - starts
    return rank


def build_label_pool(train_sets: torch.Tensor, train_cols: torch.Tensor, emb: torch.Tensor, seen: torch.Tensor,
                     unseen: torch.Tensor, num_labels: int, generator: torch.Generator, seen_fraction: float = 1.0,
                     unseen_fraction: float = 0.5, mixed_fraction: float = 0.5, repeats: int = 1,
                     max_sets: int | None = None) -> torch.Tensor:
    """Label sets as a bool matrix (sets × ``num_labels``) over global label ids (CPU)."""
    train_sets = train_sets.cpu().bool()
    train_cols, seen, unseen, emb = train_cols.cpu(), seen.cpu(), unseen.cpu(), emb.cpu()
    train_sets = train_sets[train_sets.any(1)]
    if len(train_sets) == 0:
        raise ValueError("no training image has a positive label: cannot build the label-set pool")
    to_unseen = torch.full((num_labels,), -1, dtype=torch.long)
    if len(unseen):
        to_unseen[seen] = nearest_unseen(emb, seen, unseen)
    n = len(train_sets)
    pools = []
    for _ in range(int(repeats)):
        for frac, kind in ((seen_fraction, "seen"), (unseen_fraction, "unseen"), (mixed_fraction, "mixed")):
            m = int(n * frac)
            if m == 0 or (kind != "seen" and len(unseen) == 0):
                continue
            pick = train_sets[torch.randperm(n, generator=generator)[:m]]
            out = torch.zeros(m, num_labels, dtype=torch.bool)
            rows, c = pick.nonzero(as_tuple=True)
            labels = train_cols[c]
            if kind == "seen":
                out[rows, labels] = True
            elif kind == "unseen":
                out[rows, to_unseen[labels]] = True
            else:
                # keep a random floor(n_i / 2) of each set's labels, map the others to unseen labels
                rank = random_ranks(rows, generator)
                keep = rank < (torch.bincount(rows, minlength=m)[rows] // 2)
                out[rows[keep], labels[keep]] = True
                out[rows[~keep], to_unseen[labels[~keep]]] = True
            pools.append(out)
    if not pools:
        raise ValueError("the label-set pool is empty: raise method.pool.seen_fraction")
    pool = torch.cat(pools)
    cover = column_counts(pool)
    ref = unseen if len(unseen) else seen
    covered_unseen = cover[ref][cover[ref] > 0]
    min_uc = int(covered_unseen.min()) if len(covered_unseen) else 1
    relevant = torch.zeros(num_labels, dtype=torch.bool)
    relevant[seen] = True
    relevant[unseen] = True
    for label in (relevant & (cover == 0)).nonzero(as_tuple=True)[0]:
        pool[torch.randperm(len(pool), generator=generator)[:min_uc], label] = True
    if max_sets is not None and len(pool) > max_sets:
        pool = pool[torch.randperm(len(pool), generator=generator)[:max_sets]]
    return pool
