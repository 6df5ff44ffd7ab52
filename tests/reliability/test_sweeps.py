"""A multirun survives a job's user error: the job is reported failed, the others run, the exit is non-zero."""

import json
import math

from omegaconf import OmegaConf

from tests.reliability.helpers import FAST, train
from zsl_lightning.cli import FailedJobsSummary


def test_a_bad_job_does_not_end_the_multirun(tmp_path, cache_dir):
    """Acceptance of issue 15: ``-m eval.syn_num=-3,50``."""
    sweep = tmp_path / "multi"
    r = train(["-m", *FAST, "method.epochs=1", "eval.classifier.epochs=1", "eval.select=last",
               "eval.syn_num=-3,50", f"hydra.sweep.dir={sweep}"], tmp_path, cache_dir)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out[-3000:]
    assert "Traceback" not in out
    assert "multirun job #0 failed: ConfigError" in out
    assert "1 job(s) of the multirun" in out and "#0 [" in out and "eval.syn_num=-3" in out
    failed = json.loads((sweep / "0" / "failed.json").read_text())
    assert failed["exit_code"] == 2 and failed["error"] == "ConfigError" and "eval.syn_num" in failed["message"]
    assert json.loads((sweep / "1" / "results.json").read_text())["status"] == "ok"  # job #1 ran to the end
    assert not (sweep / "1" / "failed.json").exists()


def _sweep_cfg(tmp_path):
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})


def test_summary_exits_with_the_highest_code_and_is_silent_without_failures(tmp_path, capsys):
    FailedJobsSummary().on_multirun_end(_sweep_cfg(tmp_path))  # nothing failed: returns
    for num, code in ((3, 3), (1, 2)):
        (tmp_path / str(num)).mkdir()
        (tmp_path / str(num) / "failed.json").write_text(json.dumps(
            {"job": num, "overrides": [f"seed={num}"], "error": "E", "message": "first line\nsecond", "exit_code": code}))
    try:
        FailedJobsSummary().on_multirun_end(_sweep_cfg(tmp_path))
    except SystemExit as e:
        assert e.code == 3
    else:
        raise AssertionError("no exit")
    err = capsys.readouterr().err
    assert err.index("#1 [seed=1]") < err.index("#3 [seed=3]") and "second" not in err


def test_optuna_sees_nan_for_a_failed_trial(tmp_path, monkeypatch):
    """In a multirun, main_entry returns NaN (Optuna marks the trial failed) instead of exiting."""
    import zsl_lightning.cli as cli
    import zsl_lightning.pipeline as pipeline
    from zsl_lightning.errors import ConfigError

    def bad(cfg):
        raise ConfigError("bad value")

    monkeypatch.setattr(pipeline, "run", bad)
    monkeypatch.setattr(cli, "multirun_job", lambda: {"num": 4, "overrides": ["x=1"], "dir": str(tmp_path)})
    value = cli.main_entry(OmegaConf.create({"optimized_metric": "val/gzsl_H"}))
    assert math.isnan(value)
    assert json.loads((tmp_path / "failed.json").read_text())["job"] == 4
