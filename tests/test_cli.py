"""The command line as users type it: `python train.py ...` in a subprocess."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

FAST = ["debug=fast", "trainer.enable_progress_bar=false", "method.generator.hidden=[32]",
        "method.discriminator.hidden=[32]"]


def train(args, tmp_path, cache_dir, timeout=300):
    env = dict(os.environ, ZSL_CACHE_DIR=str(cache_dir), WANDB_MODE="offline", HYDRA_FULL_ERROR="0")
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_missing_benchmark_files_exit_nonzero_with_one_clear_message(tmp_path, cache_dir):
    r = train(["method=clswgan", "data=cub", "data.root=/nonexistent"], tmp_path, cache_dir)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "res101.mat" in out and "att_splits.mat" in out
    assert "/nonexistent/CUB" in out
    assert "Traceback" not in out


def test_unknown_method_lists_the_choices(tmp_path, cache_dir):
    r = train(["method=nope"], tmp_path, cache_dir)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "Could not find 'method/nope'" in out and "clswgan" in out and "eszsl" in out


def test_default_command_prints_zsl_and_gzsl_numbers_and_writes_the_run_dir(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    r = train([*FAST, f"hydra.run.dir={run_dir}"], tmp_path, cache_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    for metric in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_H"):
        assert metric in r.stdout
    assert "selected on validation data" in r.stdout
    res = json.loads((run_dir / "results.json").read_text())
    assert res["selection"]["mode"] == "val"
    assert set(res["headline"]) == {"zsl_t1", "gzsl_u", "gzsl_s", "gzsl_H"}
    assert (run_dir / "config_resolved.yaml").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "checkpoints" / "best_gzsl.ckpt").is_file()
    assert (run_dir / "dev" / "selection.json").is_file()
    for task, epoch in res["selection"]["epochs"].items():  # best_<task>.ckpt: the validation-selected epoch
        assert res["checkpoints"][f"best_{task}"]["epoch"] == epoch
    assert (run_dir / "csv" / "test" / "metrics.csv").is_file()


def test_multirun_two_jobs(tmp_path, cache_dir):
    sweep = tmp_path / "multi"
    r = train(["-m", *FAST, "seed=0,1", "eval.select=last", f"hydra.sweep.dir={sweep}"], tmp_path, cache_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    results = sorted(sweep.glob("*/results.json"))
    assert len(results) == 2
    assert {json.loads(p.read_text())["seed"] for p in results} == {0, 1}


def test_optuna_sweep_optimises_the_validation_metric(tmp_path, cache_dir):
    sweep = tmp_path / "optuna"
    r = train(["-m", "hparams_search=optuna", *FAST, "hydra.sweeper.n_trials=2",
               "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={sweep}"], tmp_path, cache_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_value" in best
    for p in sweep.glob("*/results.json"):
        res = json.loads(p.read_text())
        assert res["headline"] == {}  # trials never run the test phase
        assert not (p.parent / "checkpoints").exists()


def test_wandb_logger_works_offline(tmp_path, cache_dir):
    run_dir = tmp_path / "wb"
    r = train([*FAST, "logger=wandb", "eval.select=last", f"hydra.run.dir={run_dir}"], tmp_path, cache_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1  # one W&B run per job, offline


@pytest.mark.parametrize("bad,pattern", [("eval.select=best", "eval.select must be one of"),
                                         ("optimized_metric=test/gzsl_H", "validation metric")])
def test_bad_config_values_get_a_clear_error(tmp_path, cache_dir, bad, pattern):
    r = train([*FAST, "eval.dev_only=true", bad], tmp_path, cache_dir)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and pattern in out and "Traceback" not in out


def test_missing_mandatory_value_names_the_key_without_a_traceback(tmp_path, cache_dir):
    r = train(["data=xlsa17"], tmp_path, cache_dir)  # data.name is ??? in conf/data/xlsa17.yaml
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in out
    assert "Missing mandatory config value: data.name" in out
    assert "data.name=<folder>" in out and "data.root=" in out


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path, cache_dir):
    run_dir = tmp_path / "ddp"
    r = train([*FAST, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.run.dir={run_dir}"],
              tmp_path, cache_dir, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run_dir / "results.json").read_text())["headline"]
    assert r.stdout.count("zsl_t1") == 1  # one rank prints
