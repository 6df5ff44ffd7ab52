"""What ``train.py`` does around a run: the value an Optuna sweep optimises, and user errors printed as one
message (exit code 2, no traceback)."""

from __future__ import annotations

import sys

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

    try:
        try:
            results = run(cfg)
            return objective(cfg, results)
        except MissingMandatoryValue as e:  # a ??? reached through an interpolation: still the user's config
            raise missing_value_error([e.full_key or str(e)]) from None
    except ZSLError as e:
        print_error(e)
        sys.exit(e.exit_code)


def print_error(e: ZSLError) -> None:
    try:
        from rich.console import Console
        from rich.text import Text

        console = Console(stderr=True)
        console.print(f"[bold red]{type(e).__name__}[/bold red]")
        console.print(Text(str(e)), soft_wrap=True)  # no hard wraps: paths and URLs stay copyable
    except ImportError:  # pragma: no cover
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
