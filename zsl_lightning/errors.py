"""User-facing errors.

Everything that is the user's input being wrong (missing files, malformed files, bad config values)
raises a :class:`ZSLError`. ``train.py`` prints these as one clear message and exits with code 2,
without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class ZSLError(Exception):
    """An error whose message is meant for the user (no traceback is shown)."""

    exit_code = 2


class DataError(ZSLError):
    """A dataset on disk is missing, malformed or inconsistent."""


class ConfigError(ZSLError):
    """A configuration value is invalid or inconsistent with the data."""


class DivergenceError(ZSLError):
    """Training diverged: a loss, gradient norm, parameter or evaluation score is not finite (or over
    ``method.divergence``'s threshold). The run stops; ``results.json`` records ``"status": "diverged"``.

    Exit code 3 (not 2): the config is valid, the optimisation is not. ``details`` holds what
    ``results.json`` records of it (phase, role, epoch, step, last finite losses)."""

    exit_code = 3

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.details = dict(details or {})


class MissingFilesError(DataError):
    """Some files of a benchmark are missing.

    The message lists every missing file, the expected layout and where the official files come from.
    """

    def __init__(self, dataset: str, missing: Iterable[Path | str], layout: str, source: str, hint: str = ""):
        self.missing = [str(p) for p in missing]
        lines = [f"Dataset '{dataset}': {len(self.missing)} required file(s) not found:"]
        lines += [f"  - {p}" for p in self.missing]
        lines += ["", "Expected layout:", *("  " + ln for ln in layout.strip("\n").splitlines())]
        lines += ["", f"Where the files come from: {source}"]
        if hint:
            lines += ["", hint]
        super().__init__("\n".join(lines))
