"""Run files get the user's umask; an interrupted run prints the exact command that resumes it."""

import os
import stat

import pytest
from omegaconf import OmegaConf

from tests.helpers import compose_cfg
from zsl_lightning.callbacks import atomic_copy
from zsl_lightning.utils.io import atomic_write_json


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_atomic_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "results.json", {"a": 1})
        atomic_copy(tmp_path / "results.json", tmp_path / "copy.json")
    finally:
        os.umask(old)
    for name in ("results.json", "copy.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_ctrl_c_prints_the_resume_command(tmp_path, monkeypatch, capsys):
    import zsl_lightning.cli as cli
    import zsl_lightning.pipeline as pipeline

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run", interrupted)
    cfg = compose_cfg(["method=vaegan", "seed=3"], tmp_path / "my run")
    with pytest.raises(SystemExit) as e:
        cli.main_entry(cfg)
    assert e.value.code == 130
    err = capsys.readouterr().err
    assert "python train.py" in err and "method=vaegan seed=3" in err
    assert f"'hydra.run.dir={tmp_path / 'my run'}'" in err  # quoted: the path has a space
    assert OmegaConf.select(cfg, "resume") == "auto"  # what makes that command continue the run
