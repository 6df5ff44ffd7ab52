"""t-SNE (or PCA) maps of real and generated features, from the epoch chosen on validation (``callbacks=tsne``).

One callback draws the feature figures of three papers:

* Gao et al. 2018 Fig. 4 (``experiment=jgm_fig4``): real vs generated features of some unseen classes of AWA1
  (panel ``unseen``);
* Li et al. 2023 (VS-Boost) Fig. 4 (``experiment=vs_boost_fig4``), AWA: (a) ``unseen_original``: real vs
  synthetic unseen features in the ResNet feature space; (b) ``unseen_refined``: the same through the
  embedding network E (Eqs. 9-10), the space VS-Boost's classifier sees; (c) ``classes_original``: real
  features of all seen and unseen classes; (d) ``classes_refined``: the same through E;
* Yan et al. 2021 (ZeroNAS) Fig. 4 (``experiment=zeronas_fig4``): real vs synthetic unseen features of
  f-CLSWGAN (FIX) and of ZeroNAS (NAS), two runs: each saves its panel's points (``save_features``) and
  ``sweep/plot_zeronas_fig4.py`` (a Hydra callback at the end of the multirun) draws the pair.

``unseen`` is the classifier's space: through ``feature_transform`` when the method has one (VS-Boost's E),
else the features themselves. "Refined" needs such a transform; without one the panel is skipped with a warning.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

from zsl_lightning.callbacks_plots import SelectedEpochPlot, embed_2d, log_image

# panel -> (what is shown, feature space: None = the classifier's, False = original, True = refined)
PANELS = {"unseen": ("unseen", None), "unseen_original": ("unseen", False), "unseen_refined": ("unseen", True),
          "classes_original": ("classes", False), "classes_refined": ("classes", True)}


class FeatureEmbeddingPlot(SelectedEpochPlot):
    """Real vs generated features of up to ``max_classes`` unseen classes (``per_class`` points each), and/or
    real features of up to ``max_all_classes`` seen and unseen classes (``panels``; see the module docstring).

    Which weights: the end of the epoch selected for ``task`` in this phase (the pipeline sets
    ``module.selected_epochs``: with ``eval.select=val`` the epochs chosen on validation, with
    ``eval.select=last`` the last one). When no selection is known (``eval.select=test_best``, which
    selects after training, or the dev phase), or when a resumed run started after the selected epoch,
    the plot is drawn from the final weights when training ends. The JSON next to each PNG records the epoch
    shown and why.

    Files (under ``<phase dir>/plots/``): ``features_<method>_<phase>.png`` for panel ``unseen``,
    ``features_<method>_<phase>_<panel>.png`` for the others; with ``save_features`` also
    ``features_<phase>.pt``: the ``unseen`` panel's points before the 2-D embedding (``real``, ``real_y``,
    ``fake``, ``fake_y``, ``classes``, ``class_names``, ``epoch``, ``weights``, ``method``).

    Args:
        method: ``tsne`` (sklearn) or ``pca``.
        phases: which phases to plot (``test``, ``dev``).
        task: whose selected epoch to show (``zsl`` or ``gzsl``).
        panels: names from ``PANELS``.
        max_all_classes: classes of the ``classes_*`` panels (seen first, then unseen, chosen with ``seed``).
    """

    def __init__(self, method: str = "tsne", max_classes: int = 10, per_class: int = 50,
                 phases: tuple[str, ...] = ("test",), seed: int = 0, task: str = "zsl",
                 panels: tuple[str, ...] = ("unseen",), max_all_classes: int = 50, save_features: bool = False):
        unknown = [p for p in panels if p not in PANELS]
        if unknown:
            from zsl_lightning.errors import ConfigError

            raise ConfigError(f"callbacks.feature_plot.panels: unknown {unknown}; choose from {sorted(PANELS)}.")
        self.method, self.max_classes, self.per_class = method, int(max_classes), int(per_class)
        self.phases, self.seed, self.task = tuple(phases), int(seed), str(task)
        self.panels, self.max_all_classes = tuple(panels), int(max_all_classes)
        self.save_features = bool(save_features)
        self.last_path: Path | None = None
        self.paths: dict[str, Path] = {}
        self._drawn = False

    def path_for(self, root: Path, phase: str, panel: str) -> Path:
        tail = "" if panel == "unseen" else f"_{panel}"
        return Path(root) / "plots" / f"features_{self.method}_{phase}{tail}.png"

    # ---------------------------------------------------------------------------------------- points
    def _rows(self, x: torch.Tensor, y: torch.Tensor, classes: torch.Tensor, g: torch.Generator):
        """Up to ``per_class`` rows of ``x`` of each class in ``classes`` (chosen with ``g``), and their labels."""
        out, labels = [], []
        for c in classes.tolist():
            rows = (y == c).nonzero().flatten()
            rows = rows[torch.randperm(len(rows), generator=g)[: self.per_class].to(rows.device)]
            out.append(x[rows])
            labels += [c] * len(rows)
        return torch.cat(out), labels

    def unseen_points(self, pl_module, split) -> dict:
        """Real and generated features of the chosen unseen classes, in the original feature space."""
        g = torch.Generator().manual_seed(self.seed)
        classes = split.unseen_classes[torch.randperm(len(split.unseen_classes), generator=g)[: self.max_classes]]
        real, real_y = self._rows(split.test_unseen_x, split.test_unseen_y, classes, g)
        # drawn mid-training too: leave the training run's random streams as they were
        with torch.random.fork_rng(devices=pl_module.rng_devices()):
            torch.manual_seed(self.seed)
            fake = pl_module.synthesize(split.class_embeddings[classes], self.per_class)
        return {"real": real, "real_y": real_y, "fake": fake, "fake_y": classes.repeat_interleave(self.per_class).tolist(),
                "classes": classes.tolist()}

    def class_points(self, split) -> dict:
        """Real evaluation features of up to ``max_all_classes`` classes: seen (test_seen) then unseen
        (test_unseen). All of them when they fit (AWA: 50), else a random choice in proportion to their numbers."""
        g = torch.Generator().manual_seed(self.seed + 1)
        seen, unseen = split.seen_classes, split.unseen_classes
        total = len(seen) + len(unseen)
        n_seen = len(seen) if total <= self.max_all_classes else max(1, round(self.max_all_classes * len(seen) / total))
        n_unseen = min(len(unseen), max(1, self.max_all_classes - n_seen))
        seen = seen[torch.randperm(len(seen), generator=g)[:n_seen]].sort().values
        unseen = unseen[torch.randperm(len(unseen), generator=g)[:n_unseen]].sort().values
        xs, ys = self._rows(split.test_seen_x, split.test_seen_y, seen, g)
        xu, yu = self._rows(split.test_unseen_x, split.test_unseen_y, unseen, g)
        return {"real": torch.cat([xs, xu]), "real_y": ys + yu, "unseen": set(unseen.tolist())}

    # ---------------------------------------------------------------------------------------- drawing
    def _plot(self, trainer: pl.Trainer, pl_module, epoch: int, why: str) -> None:
        split = getattr(pl_module, "data", None)
        if split is None or split.name not in self.phases or not trainer.is_global_zero:
            return
        self._drawn = True
        if not hasattr(pl_module, "synthesize") or getattr(split, "label_mode", "single") != "single":
            warnings.warn(f"{type(pl_module).__name__} does not generate single-label features: no plot")
            return
        transform = pl_module.feature_transform() if hasattr(pl_module, "feature_transform") else None
        subtitle = f"epoch {epoch} ({why})"
        root = Path(trainer.default_root_dir)
        unseen = self.unseen_points(pl_module, split) if any(PANELS[p][0] == "unseen" for p in self.panels) else None
        if self.save_features and unseen is not None:
            pt = root / "plots" / f"features_{split.name}.pt"
            pt.parent.mkdir(parents=True, exist_ok=True)
            space = self._space(unseen, transform, None)
            torch.save({**space, "real_y": unseen["real_y"], "fake_y": unseen["fake_y"], "classes": unseen["classes"],
                        "class_names": list(split.class_names), "epoch": epoch, "weights": why,
                        "method": type(pl_module).__name__}, pt)
        for panel in self.panels:
            what, refined = PANELS[panel]
            if refined and transform is None:
                warnings.warn(f"panel {panel}: {type(pl_module).__name__} has no feature transform: not drawn")
                continue
            path = self.path_for(root, split.name, panel)
            if what == "unseen":
                pts = self._space(unseen, transform, refined)
                x = torch.cat([pts["real"], pts["fake"]])
                xy = embed_2d(x, self.method, self.seed)
                space = "refined (E)" if refined or (refined is None and transform is not None) else "original"
                self._draw_unseen(xy, unseen["real_y"], unseen["fake_y"], split, path, f"{space}, {subtitle}")
                classes = unseen["classes"]
            else:
                pts = self.class_points(split)
                xy = embed_2d(self._space(pts, transform, refined)["real"], self.method, self.seed)
                self._draw_classes(xy, pts["real_y"], pts["unseen"], path,
                                   f"{'refined (E)' if refined else 'original'}, {subtitle}")
                classes = sorted(set(pts["real_y"]))
            note = {"epoch": epoch, "weights": why, "task": self.task, "panel": panel, "classes": classes}
            path.with_suffix(".json").write_text(json.dumps(note, indent=1))
            self.paths[panel] = self.last_path = path
            log_image(trainer, f"plots/features_{self.method}" + ("" if panel == "unseen" else f"_{panel}"), path)

    @staticmethod
    def _space(points: dict, transform, refined: bool | None) -> dict:
        """``points``' feature tensors mapped through ``transform`` when ``refined`` (or None with a transform)."""
        keys = [k for k in ("real", "fake") if k in points]
        if transform is None or refined is False:
            return {k: points[k].detach().float().cpu() for k in keys}
        with torch.no_grad():
            return {k: transform(points[k]).detach().float().cpu() for k in keys}

    def _draw_unseen(self, xy, real_y, fake_y, split, path: Path, subtitle: str = "") -> None:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 5))
        scatter_real_fake(ax, xy, real_y, fake_y, split.class_names)
        ax.set_title(f"real (o) vs generated (x) unseen features, {self.method.upper()}\n{subtitle}", fontsize=9)
        ax.legend(fontsize=6, loc="best", ncol=2)
        save(fig, path)

    def _draw_classes(self, xy, labels, unseen: set, path: Path, subtitle: str) -> None:
        plt = pyplot()
        classes = sorted(set(labels))
        cmap = plt.get_cmap("tab20" if len(classes) <= 20 else "nipy_spectral")
        colour = {c: cmap(i % 20 if len(classes) <= 20 else i / max(1, len(classes) - 1)) for i, c in enumerate(classes)}
        fig, ax = plt.subplots(figsize=(6, 5))
        for kind, marker in (("seen", "o"), ("unseen", "^")):
            rows = [j for j, y in enumerate(labels) if (y in unseen) == (kind == "unseen")]
            if rows:
                ax.scatter(xy[rows, 0], xy[rows, 1], s=8, marker=marker, alpha=0.6,
                           color=[colour[labels[j]] for j in rows], label=f"{kind} classes")
        ax.set_title(f"real features of seen (o) and unseen (^) classes, {self.method.upper()}\n{subtitle}",
                     fontsize=9)
        ax.legend(fontsize=7, loc="best")
        save(fig, path)


def scatter_real_fake(ax, xy, real_y, fake_y, class_names) -> None:
    """Real (o) and generated (x) points of each class in one colour (``xy``: real rows first)."""
    plt = pyplot()

    n_real = len(real_y)
    classes = sorted(set(real_y) | set(fake_y))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        color = cmap(i % cmap.N)
        r = [j for j, y in enumerate(real_y) if y == c]
        f = [n_real + j for j, y in enumerate(fake_y) if y == c]
        name = class_names[c] if c < len(class_names) else str(c)
        ax.scatter(xy[r, 0], xy[r, 1], s=10, color=color, marker="o", alpha=0.6, label=f"{name} real")
        ax.scatter(xy[f, 0], xy[f, 1], s=14, color=color, marker="x", alpha=0.8)


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (callbacks run headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    plt = pyplot()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
