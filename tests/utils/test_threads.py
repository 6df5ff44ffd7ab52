"""CPU threads of a run (issue 16): cores of the process affinity ÷ concurrent jobs, ``threads=`` winning."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from tests.helpers import compose_cfg
from zsl_lightning.errors import ConfigError
from zsl_lightning.utils.env import choose_threads, configure_threads, launcher_jobs


def test_cores_are_shared_between_concurrent_jobs():
    assert choose_threads(cores=2, n_jobs=2)[0] == 1
    assert choose_threads(cores=16, n_jobs=4)[0] == 4
    assert choose_threads(cores=7, n_jobs=2)[0] == 3  # rounded down: never more threads than cores
    assert choose_threads(cores=2, n_jobs=1)[0] == 2


def test_more_jobs_than_cores_still_get_one_thread():
    assert choose_threads(cores=2, n_jobs=5)[0] == 1


def test_explicit_threads_win_over_everything():
    assert choose_threads(cores=2, n_jobs=2, threads=3, env="4") == (3, "threads=")
    assert choose_threads(cores=2, n_jobs=2, env="4") == (4, "OMP_NUM_THREADS")
    assert choose_threads(cores=8, n_jobs=2, env="")[0] == 4  # an empty variable is not a choice


def _hydra(mode: str, n_jobs):
    return OmegaConf.create({"mode": mode, "launcher": {} if n_jobs is None else {"n_jobs": n_jobs}})


def test_n_jobs_counts_only_in_a_multirun_and_follows_joblib():
    assert launcher_jobs(_hydra("RUN", 2), cores=8) == 1  # a single run does not use the launcher
    assert launcher_jobs(_hydra("MULTIRUN", 2), cores=8) == 2
    assert launcher_jobs(_hydra("MULTIRUN", -1), cores=8) == 8  # joblib: one job per core
    assert launcher_jobs(_hydra("MULTIRUN", -2), cores=8) == 7
    assert launcher_jobs(_hydra("MULTIRUN", None), cores=8) == 1  # basic launcher: one job at a time
    assert launcher_jobs(None, cores=8) == 1


def test_the_joblib_launcher_config_gives_its_n_jobs(tmp_path):
    """``-m hydra/launcher=local_parallel``: the composed Hydra node carries n_jobs=2, so each job of a 2-core
    machine gets one thread."""
    cfg = compose_cfg(["hydra/launcher=local_parallel", "hydra.mode=MULTIRUN"], tmp_path)
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert launcher_jobs(cfg.hydra, cores=2) == 2
    assert choose_threads(2, launcher_jobs(cfg.hydra, cores=2))[0] == 1
    assert launcher_jobs(compose_cfg(["hydra.mode=MULTIRUN"], tmp_path).hydra, cores=2) == 1  # basic launcher


def test_configure_threads_sets_torch_logs_and_validates(tmp_path, monkeypatch, caplog):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        with caplog.at_level("INFO", logger="zsl_lightning.utils.env"):
            assert configure_threads(OmegaConf.create({"threads": 1})) == 1
        assert torch.get_num_threads() == 1
        assert "CPU threads: 1 intra-op (threads=;" in caplog.text
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_threads(OmegaConf.create({"threads": None})) == 1
        with pytest.raises(ConfigError, match="threads=0"):
            configure_threads(OmegaConf.create({"threads": 0}))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("user", [None, "ACTIVE", "PASSIVE"])
def test_train_py_shortens_the_openmp_spin_before_torch_loads(user):
    """libgomp reads GOMP_SPINCOUNT when torch loads: train.py must set it first, and leave a user's wait policy."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if user:
        env["OMP_WAIT_POLICY"] = user
    code = ("import os, runpy, sys; runpy.run_path('train.py', run_name='imported'); "
            "print(os.environ.get('OMP_WAIT_POLICY', '-'), os.environ.get('GOMP_SPINCOUNT', '-'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ([user, "-", "False"] if user else ["-", "10000", "False"])
