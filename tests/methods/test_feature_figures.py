"""The t-SNE feature figures as experiments: Gao et al. Fig. 4 (``experiment=jgm_fig4``), VS-Boost Fig. 4's four
panels (``experiment=vs_boost_fig4``) and ZeroNAS Fig. 4, FIX vs NAS (``experiment=zeronas_fig4``), each run on
the embedded benchmark with ``debug=fast`` and drawn from the epoch selected on validation."""

import json

import pytest
import torch
from omegaconf import open_dict

from tests.helpers import compose_cfg
from zsl_lightning.pipeline import run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = ["callbacks.feature_plot.per_class=6", "callbacks.feature_plot.max_classes=3",
         "callbacks.feature_plot.max_all_classes=6"]


def _figure_cfg(experiment: str, out, cache_dir, extra=(), plot=()):
    """``experiment=<experiment> data=synthetic debug=fast``; debug=fast drops callbacks, so the experiment's
    feature_plot is put back (with fewer points, so that t-SNE takes a second; ``plot``: more overrides of it)."""
    overrides = [f"experiment={experiment}", "data=synthetic", "eval.select=val", *extra]
    # compose_cfg quiets callbacks (callbacks=none), which outranks the experiment's override: name it again
    plot_cfg = compose_cfg([*overrides, "callbacks=tsne", *SMALL, *plot], out, cache_dir).callbacks.feature_plot
    cfg = compose_cfg([*overrides, "debug=fast", "trainer.enable_progress_bar=false"], out, cache_dir)
    with open_dict(cfg):
        cfg.callbacks = {"feature_plot": plot_cfg}
    return cfg


def _note(png):
    assert png.read_bytes()[:8] == PNG_MAGIC
    return json.loads(png.with_suffix(".json").read_text())


def test_jgm_fig4_draws_real_vs_generated_unseen_features_at_the_validation_epoch(tmp_path, cache_dir):
    cfg = _figure_cfg("jgm_fig4", tmp_path, cache_dir)
    assert cfg.callbacks.feature_plot.panels == ["unseen"]
    res = run(cfg)
    note = _note(tmp_path / "plots" / "features_tsne_test.png")
    assert note["epoch"] == res["selection"]["epochs"]["zsl"] and note["weights"] == "epoch selected for zsl"
    assert len(note["classes"]) == 3


def test_vs_boost_fig4_draws_all_four_panels(tmp_path, cache_dir):
    cfg = _figure_cfg("vs_boost_fig4", tmp_path, cache_dir)
    panels = ["unseen_original", "unseen_refined", "classes_original", "classes_refined"]
    assert list(cfg.callbacks.feature_plot.panels) == panels  # (a) (b) (c) (d)
    res = run(cfg)
    for panel in panels:
        note = _note(tmp_path / "plots" / f"features_tsne_test_{panel}.png")
        assert note["panel"] == panel and note["epoch"] == res["selection"]["epochs"]["zsl"]
        # (c), (d): 6 of the 80 seen + 20 unseen classes (max_all_classes), in proportion: 5 seen, 1 unseen
        assert len(note["classes"]) == (3 if panel.startswith("unseen") else 6)


def test_refined_panels_need_a_feature_transform_and_panel_names_are_checked(tmp_path, cache_dir):
    from zsl_lightning.callbacks_features import FeatureEmbeddingPlot
    from zsl_lightning.errors import ConfigError

    with pytest.raises(ConfigError, match="panels"):
        FeatureEmbeddingPlot(panels=["refined"])
    cfg = _figure_cfg("jgm_fig4", tmp_path, cache_dir,
                      plot=["callbacks.feature_plot.panels=[unseen_original,unseen_refined]"])
    with pytest.warns(UserWarning, match="unseen_refined: JGM has no feature transform"):
        run(cfg)
    assert (tmp_path / "plots" / "features_tsne_test_unseen_original.png").is_file()
    assert not (tmp_path / "plots" / "features_tsne_test_unseen_refined.png").exists()


@pytest.mark.slow
def test_zeronas_fig4_pairs_the_fix_and_nas_runs(tmp_path, cache_dir):
    """The two jobs of the multirun (method=clswgan, method=zeronas) save their points; the Hydra callback
    draws the pair from the sweep directory. Same seed, so the same unseen classes and real rows in both."""
    from omegaconf import OmegaConf

    from sweep.plot_zeronas_fig4 import ZeroNASFig4Plot, collect

    sweep = tmp_path / "sweep"
    for i, method in enumerate(["clswgan", "zeronas"]):
        cfg = _figure_cfg("zeronas_fig4", sweep / str(i), cache_dir, [f"method={method}"])
        assert cfg.callbacks.feature_plot.save_features
        run(cfg)
    jobs = collect(sweep)
    assert [m for m, _ in jobs] == ["clswgan", "zeronas"]
    (_, fix), (_, nas) = jobs
    assert fix["classes"] == nas["classes"] and torch.equal(fix["real"], nas["real"])
    assert fix["fake"].shape == nas["fake"].shape == (3 * 6, fix["real"].shape[1])
    cb = ZeroNASFig4Plot(method="pca")
    cb.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}, "seed": 0}))
    assert cb.last_path == sweep / "fig4.png" and cb.last_path.read_bytes()[:8] == PNG_MAGIC
