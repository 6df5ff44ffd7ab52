"""Optional plotting callbacks and what they share (:class:`SelectedEpochPlot`, :func:`embed_2d`).

:class:`~zsl_lightning.callbacks_features.FeatureEmbeddingPlot` (``callbacks=tsne``, in
``callbacks_features.py``; still importable from here) — t-SNE (or PCA) maps of real and generated features
(Gao et al. Fig. 4, VS-Boost Fig. 4, ZeroNAS Fig. 4), drawn from the generator of the *selected* epoch.
:class:`GBEAttentionMaps` — Liu et al. 2023 Fig. 7 (``callbacks=gbe_attention``): LID attention maps of a few
evaluation images for their top-scored labels, from the same selected epoch.

Each is saved as PNG under ``<phase dir>/plots/`` (with a JSON note of the epoch it shows) and logged to W&B
when a WandbLogger is attached.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch


def embed_2d(x: torch.Tensor, method: str = "tsne", seed: int = 0) -> torch.Tensor:
    """2-D coordinates of the rows of ``x``: sklearn's t-SNE when available (and asked for), else PCA."""
    x = x.detach().float().cpu()
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE

            perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
            return torch.as_tensor(TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x.numpy()))
        except ImportError:
            warnings.warn("scikit-learn is not installed: using PCA instead of t-SNE")
    x = x - x.mean(0, keepdim=True)
    _, _, v = torch.pca_lowrank(x, q=2, center=False)
    return x @ v[:, :2]


class SelectedEpochPlot(pl.Callback):
    """Draws once, from the weights of the epoch selected for ``task`` (see :class:`FeatureEmbeddingPlot`);
    a subclass implements ``_plot(trainer, pl_module, epoch, why)`` and sets ``self._drawn``."""

    task: str = "zsl"
    _drawn: bool = False

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        selected = dict(pl_module.context.selected_epochs)
        if not self._drawn and self.task in selected and epoch == int(selected[self.task]):
            self._plot(trainer, pl_module, epoch, f"epoch selected for {self.task}")

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        if self._drawn:
            return
        selected = dict(pl_module.context.selected_epochs)
        why = ("last epoch, no selection known" if self.task not in selected else
               f"final weights: the selected epoch {selected[self.task]} was not trained in this process")
        self._plot(trainer, pl_module, int(trainer.current_epoch), why)

    def _plot(self, trainer: pl.Trainer, pl_module, epoch: int, why: str) -> None:
        raise NotImplementedError


def log_image(trainer: pl.Trainer, key: str, path: Path) -> None:
    """``path`` to every attached WandbLogger under ``key``."""
    for lg in trainer.loggers:
        if type(lg).__name__ == "WandbLogger":
            lg.log_image(key=key, images=[str(path)])


class GBEAttentionMaps(SelectedEpochPlot):
    """Liu et al. 2023 Fig. 7: where GBE-MLZSL's LID (Eqs. 4–6) looks for a label, for ``images`` evaluation
    images chosen with ``seed`` among the first ``pool`` of ``task``'s evaluation set.

    For each image, its ``labels`` top-scored labels of ``task`` (Eq. 13, unseen labels for ``zsl``), and for
    each label the group ``m`` that wins Eq. (13)'s max: that group's attention ``A_c`` (Eq. 5) averaged over
    query positions — how much attention each position of the 14 × 14 grid (``⌊14/p⌋`` for patch size ``p``)
    receives; a map that sums to 1 — drawn as a heat map (each panel on its own min–max colour scale). The paper does not say how its red areas are
    computed; this is our choice. The first column shows the image (``data.source=images``) or, for stored
    maps, the channel mean of ``F^14``. Same epoch rule as :class:`FeatureEmbeddingPlot`;
    ``plots/gbe_attention_<phase>.png`` + ``.json`` (epoch, rows, labels, groups). Needs a model with LID.
    """

    def __init__(self, images: int = 4, labels: int = 3, pool: int = 256, phases: tuple[str, ...] = ("test",),
                 seed: int = 0, task: str = "zsl"):
        self.images, self.labels, self.pool = int(images), int(labels), int(pool)
        self.phases, self.seed, self.task = tuple(phases), int(seed), str(task)
        self.last_path: Path | None = None
        self._drawn = False

    @torch.no_grad()
    def attention(self, pl_module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(S, maps, background)`` of a batch: ``S`` (B, n, d_w), ``maps`` (B, n, h, w) LID attention received
        per position (mean over queries), ``background`` (B, H, W) channel mean of ``F^14``. Runs in eval mode
        and leaves every submodule's train/eval mode and the LID hook as they were."""
        from zsl_lightning.nn.gbe import _scale

        lid = pl_module.model.lid
        modes = {mod: mod.training for mod in pl_module.modules()}
        pl_module.eval()
        lid.record_attention = True
        try:
            feats = pl_module.features(x)
            S = pl_module.model(feats)
            attn = lid.last_attention
        finally:
            lid.record_attention, lid.last_attention = False, None
            for mod, was in modes.items():
                mod.training = was
        f14 = _scale(feats, 14)
        h, w = (s // lid.patch_size for s in f14.shape[-2:])
        maps = attn.mean(dim=2).view(attn.shape[0], attn.shape[1], h, w)
        return S, maps, f14.mean(dim=1)

    def _plot(self, trainer: pl.Trainer, pl_module, epoch: int, why: str) -> None:
        split = getattr(pl_module, "data", None)
        if split is None or split.name not in self.phases or not trainer.is_global_zero:
            return
        self._drawn = True
        if getattr(getattr(pl_module, "model", None), "lid", None) is None:
            warnings.warn(f"{type(pl_module).__name__} has no GBE LID module (method=gbe with use_lid): no plot")
            return
        store, cols = {t: (s, c) for t, _, s, c in split.eval_tasks}[self.task]
        x, _ = store.read_chunk(0, self.pool)
        g = torch.Generator().manual_seed(self.seed)
        pick = torch.randperm(len(x), generator=g)[: self.images]
        x = x[pick].to(pl_module.device)
        S, maps, background = self.attention(pl_module, x)
        cols = cols.to(S.device)
        per_group = torch.einsum("bnd,ld->bnl", S, split.class_embeddings.to(S.device)[cols].to(S.dtype))
        top = per_group.amax(dim=1).topk(min(self.labels, len(cols)), dim=1).indices  # (B, k)
        groups = per_group.argmax(dim=1).gather(1, top)  # the group winning Eq. (13) for each label
        labels = cols[top]
        path = Path(trainer.default_root_dir) / "plots" / f"gbe_attention_{split.name}.png"
        images = x if x.dtype == torch.uint8 and x.dim() == 4 else None
        self._draw(images, background, maps, labels, groups, split, path, f"epoch {epoch} ({why})")
        rows = getattr(store, "rows", None)
        note = {"epoch": epoch, "weights": why, "task": self.task, "map": "LID A_c mean over queries",
                "rows": [int(rows[i]) if rows is not None else int(i) for i in pick.tolist()],
                "labels": labels.tolist(), "groups": groups.tolist()}
        path.with_suffix(".json").write_text(json.dumps(note, indent=1))
        self.last_path = path
        log_image(trainer, "plots/gbe_attention", path)

    def _draw(self, images, background, maps, labels, groups, split, path: Path, subtitle: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n, k = labels.shape
        fig, axes = plt.subplots(n, k + 1, figsize=(2 * (k + 1), 2 * n + 0.6), squeeze=False)
        for i in range(n):
            ax = axes[i, 0]
            if images is not None:
                ax.imshow(images[i].permute(1, 2, 0).cpu().numpy())
            else:
                ax.imshow(background[i].cpu().numpy(), cmap="gray")
            ax.set_title("image" if images is not None else "F^14 mean", fontsize=7)
            for j in range(k):
                c, m = int(labels[i, j]), int(groups[i, j])
                name = split.class_names[c] if c < len(split.class_names) else str(c)
                axes[i, j + 1].imshow(maps[i, m].cpu().numpy(), cmap="jet")
                axes[i, j + 1].set_title(f"{name} (group {m})", fontsize=7)
        for ax in axes.flat:
            ax.axis("off")
        fig.suptitle(f"GBE LID attention (mean over queries), {self.task}\n{subtitle}", fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)


def __getattr__(name: str):
    """``callbacks_plots.FeatureEmbeddingPlot`` still resolves (it moved to ``callbacks_features``)."""
    if name == "FeatureEmbeddingPlot":
        from zsl_lightning.callbacks_features import FeatureEmbeddingPlot

        return FeatureEmbeddingPlot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
