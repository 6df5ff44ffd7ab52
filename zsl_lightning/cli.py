"""What ``train.py`` does around a run: the value an Optuna sweep optimises, and user errors printed as one
message (exit code 2, no traceback; 3 for a diverged run).

In a multirun a job's user error does not end the sweep: the job's message is printed, its directory gets
``failed.json`` (error, message, exit code, overrides), an Optuna trial is told NaN (Optuna marks it failed),
and the sweep goes on; :class:`FailedJobsSummary` (``conf/hydra/default.yaml``) lists the failed jobs at the
end and exits non-zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from zsl_lightning.errors import ConfigError, ZSLError
from zsl_lightning.utils.config import missing_value_error


def objective(cfg: DictConfig, results: dict) -> float | None:
    """The value an Optuna sweep optimises: a *validation* metric (``optimized_metric``, e.g. ``val/gzsl_H``)."""
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    metric = str(metric)
    if not metric.startswith("val/"):
        raise ConfigError(f"optimized_metric must be a validation metric (val/...), got '{metric}'.")
    key = metric[len("val/"):]
    if key not in results.get("validation", {}):
        raise ConfigError(f"optimized_metric '{metric}' is not among {sorted(results.get('validation', {}))}.")
    return float(results["validation"][key])


def main_entry(cfg: DictConfig) -> float | None:
    """Entry point used by ``train.py``: user errors become one message and exit code 2, no traceback."""
    from omegaconf.errors import MissingMandatoryValue

    from zsl_lightning.pipeline import run
    from zsl_lightning.utils.env import configure_threads

    job = multirun_job()
    if job is not None:  # a rerun of this job into the same sweep directory starts clean
        (Path(job["dir"]) / FAILED_FILE).unlink(missing_ok=True)
    try:
        try:
            configure_threads(cfg)  # before any parallel work: inter-op threads cannot change after it
            results = run(cfg)
            return objective(cfg, results)
        except MissingMandatoryValue as e:  # a ??? reached through an interpolation: still the user's config
            raise missing_value_error([e.full_key or str(e)]) from None
    except KeyboardInterrupt:
        print(f"\nInterrupted. Resume this run (finished epochs are kept) with:\n  {resume_command(cfg)}",
              file=sys.stderr)
        sys.exit(130)
    except ZSLError as e:
        if job is None:
            print_error(e)
            sys.exit(e.exit_code)
        print_error(e, header=f"multirun job #{job['num']} failed: ")
        record_failed_job(job, e)
        return float("nan") if cfg.get("optimized_metric") else None


FAILED_FILE = "failed.json"


def resume_command(cfg: DictConfig) -> str:
    """The command that continues this run in its directory (``resume=auto`` picks up ``last.ckpt``)."""
    import shlex

    from zsl_lightning.utils.config import hydra_overrides

    keep = [o for o in hydra_overrides() if not o.startswith(("hydra.run.dir=", "hydra.sweep.dir=", "resume="))]
    out = str(cfg.paths.output_dir)
    return shlex.join(["python", "train.py", *keep, f"hydra.run.dir={out}"])


def multirun_job() -> dict | None:
    """Number, overrides and directory of this job when it runs inside a Hydra multirun (else None)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return None
        return {"num": int(hc.job.num), "overrides": list(hc.overrides.task), "dir": str(hc.runtime.output_dir)}
    except Exception:  # not under Hydra
        return None


def record_failed_job(job: dict, e: ZSLError) -> None:
    from zsl_lightning.utils.io import atomic_write_json

    atomic_write_json(Path(job["dir"]) / FAILED_FILE,
                      {"job": job["num"], "overrides": job["overrides"], "error": type(e).__name__,
                       "message": str(e), "exit_code": e.exit_code,
                       "status": "diverged" if e.exit_code == 3 else "failed"})


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class FailedJobsSummary(Callback):
    """At the end of a multirun: list the jobs that wrote ``failed.json`` and exit with the highest of their
    exit codes (Hydra itself would exit 0)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failed = []
        for f in sorted(sweep_dir.glob(f"*/{FAILED_FILE}")):
            try:
                failed.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
        if not failed:
            return
        failed.sort(key=lambda r: r.get("job", 0))
        lines = [f"{len(failed)} job(s) of the multirun in {sweep_dir} failed:"]
        for r in failed:
            first = str(r.get("message", "")).splitlines()[0] if r.get("message") else ""
            lines.append(f"  #{r.get('job')} [{' '.join(r.get('overrides', []))}] {r.get('error')}: {first}")
        print("\n".join(lines), file=sys.stderr)
        sys.exit(max(int(r.get("exit_code", 2)) for r in failed))


class RunDirCheck(Callback):
    """Before Hydra creates the run (or sweep) directory: a directory that cannot be written is one clear message
    and exit code 2 (Hydra would fail with a traceback while writing ``.hydra/``)."""

    def _check(self, path, key: str) -> None:
        from zsl_lightning.utils.rundir import writable_dir_error

        err = writable_dir_error(Path(str(path)), key)
        if err is not None:
            print_error(err)
            sys.exit(err.exit_code)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")


def print_error(e: ZSLError, header: str = "") -> None:
    try:
        from rich.console import Console
        from rich.text import Text

        console = Console(stderr=True)
        console.print(f"[bold red]{header}{type(e).__name__}[/bold red]")
        console.print(Text(str(e)), soft_wrap=True)  # no hard wraps: paths and URLs stay copyable
    except ImportError:  # pragma: no cover
        print(f"{header}{type(e).__name__}: {e}", file=sys.stderr)
