"""W&B, offline: what a run logs (read back from its offline files), and the W&B sweep's agent command line."""

from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf, open_dict

from tests.helpers import ROOT, compose_cfg, shrink
from zsl_lightning.utils.wandb_offline import read_offline_run

pytest.importorskip("wandb")

QUIET_WANDB = ["print_config=false", "logger=wandb", "trainer.enable_progress_bar=false", "logger.wandb.offline=true"]


def read_back(run_dir):
    """The offline run under ``run_dir``, once W&B's service has written all of it."""
    import wandb

    wandb.teardown()  # finish() can return before the service flushed the last records to the .wandb file
    return read_offline_run(run_dir)


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    (tmp_path / "wandb_dir").mkdir()
    return tmp_path


def test_offline_run_holds_curves_per_class_tables_confusion_and_the_plot(offline_wandb, cache_dir):
    from zsl_lightning.pipeline import run

    out = offline_wandb / "run"
    cfg = shrink(compose_cfg(["debug=fast", "method=clswgan", *QUIET_WANDB], out, cache_dir, quiet=False))
    with open_dict(cfg):  # debug=fast drops callbacks; add the t-SNE callback back (PCA: fast, no sklearn)
        cfg.callbacks = {"feature_plot": {"_target_": "zsl_lightning.callbacks_plots.FeatureEmbeddingPlot",
                                          "method": "pca", "max_classes": 3, "per_class": 5, "phases": ["test"]}}
    res = run(cfg)
    wb = read_back(out / "wandb")

    logged = set().union(*wb.history)
    assert {"val/zsl_t1", "val/gzsl_H", "test/zsl_t1", "test/gzsl_H", "epoch"} <= logged
    assert any(k.startswith("dev/train/") for k in logged) and any(k.startswith("train/") for k in logged)
    assert wb.config["choices/method"] == "clswgan" and wb.config["choices/data"] == "synthetic"
    s = wb.summary
    assert s["final/zsl_t1"] == res["headline"]["zsl_t1"] and s["final/val/gzsl_H"] == res["validation"]["gzsl_H"]
    assert s["final/epoch/gzsl"] == res["selection"]["epochs"]["gzsl"] and s["final/selection"] == "val"

    pc = res["per_class"]
    zsl = wb.table("per_class/zsl")
    assert zsl["columns"] == ["group", "class", "name", "top-1 accuracy (%)", "n"]
    assert [r[1] for r in zsl["data"]] == pc["zsl"]["unseen"]["class"]
    assert [r[3] for r in zsl["data"]] == pytest.approx(pc["zsl"]["unseen"]["value"])
    gzsl = wb.table("per_class/gzsl")
    assert sorted({r[0] for r in gzsl["data"]}) == ["seen", "unseen"]
    assert len(gzsl["data"]) == len(pc["gzsl"]["seen"]["class"]) + len(pc["gzsl"]["unseen"]["class"])
    conf = wb.table("gzsl_confusion")["data"]
    assert conf[0][2] == pytest.approx(pc["gzsl"]["confusion"]["seen_to_unseen"])
    assert conf[1][1] == pytest.approx(pc["gzsl"]["confusion"]["unseen_to_seen"])
    assert s["final/gzsl_unseen_to_seen"] == pytest.approx(pc["gzsl"]["confusion"]["unseen_to_seen"])

    image = s["plots/features_pca"]
    assert image["_type"] == "images/separated" and image["count"] == 1
    assert (wb.files / image["filenames"][0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_image_drawn_before_the_wandb_run_exists_is_logged_when_it_starts(offline_wandb):
    """ZeroNAS's derive phase draws genotype.png before any phase trained (search skipped: no W&B run yet)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zsl_lightning.utils.loggers import Loggers

    png = offline_wandb / "genotype.png"
    plt.imsave(png, [[0.0, 1.0], [1.0, 0.0]])
    cfg = compose_cfg(["print_config=false", "logger=wandb", "logger.wandb.offline=true"], offline_wandb / "run",
                      quiet=False)
    # only the logger: the rest of the config interpolates the data the pipeline would have loaded
    loggers = Loggers(OmegaConf.create({"logger": OmegaConf.to_container(cfg.logger, resolve=True), "seed": 0}))
    loggers.log_image("plots/genotype", png)
    assert loggers.images  # queued
    loggers.for_phase("dev")
    assert not loggers.images
    loggers.finish(None)
    wb = read_back(offline_wandb / "run" / "wandb")
    assert wb.summary["plots/genotype"]["count"] == 1


def agent_command(sweep: dict, values: dict) -> list[str]:
    """The command ``wandb agent`` runs for one set of parameter values: the sweep's ``command`` with wandb's
    own macro expansion (``wandb_agent.Agent._command_run``, wandb 0.31: ``${env}`` → /usr/bin/env,
    ``${interpreter}`` → python, ``${program}``, ``${args_no_hyphens}`` → ``key=value``, ...)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = sweep_utils.create_sweep_command(list(sweep["command"]))
    macros = sweep_utils.create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    macros.update(interpreter=["python"], program=[sweep["program"]], env=["/usr/bin/env"])
    out = []
    for c in map(str, command):
        out += (macros.get(c[2:-1]) or []) if c.startswith("${") and c.endswith("}") else [c]
    return out


def _samples(spec: dict) -> list:
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    return [spec["min"], spec["max"]]


def test_wandb_sweep_agent_command_composes_with_hydra(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    sweep = yaml.safe_load((ROOT / "sweep" / "wandb_sweep.yaml").read_text())
    assert (ROOT / sweep["program"]).is_file()
    params = sweep["parameters"]
    n = max(len(_samples(p)) for p in params.values())
    for i in range(n):  # every listed value and both ends of every range, at least once
        values = {k: _samples(p)[i % len(_samples(p))] for k, p in params.items()}
        cmd = agent_command(sweep, values)
        assert cmd[:3] == ["/usr/bin/env", "python", "train.py"]
        overrides = cmd[3:]
        assert all("=" in o and not o.startswith("-") for o in overrides), overrides
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
        for key, value in values.items():
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert node == pytest.approx(value), key
        assert cfg.eval.dev_only is True and "wandb" in cfg.logger
    # the metric the sweep maximises is a validation number the run writes to its W&B summary
    assert sweep["metric"]["name"].startswith("final/val/")
