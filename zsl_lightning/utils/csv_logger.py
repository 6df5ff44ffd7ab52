"""A CSV logger whose metric rows survive a resume.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when its folder is reused, so a resumed run kept only the rows
written after the resume. :class:`ResumableCSVLogger` keeps the file: on a resume
(``keep_before_epoch=e``, the first epoch the resumed run trains) the rows of epochs before ``e`` stay and the
rows of any later epoch (logged after the checkpoint, then replayed) are dropped; new rows are appended under
the same header (a new metric key rewrites the header, keeping the rows). Without a resume it behaves like
``CSVLogger``, except that a stale ``metrics.csv`` of an earlier run in that folder is replaced, not appended to.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from zsl_lightning.utils.io import atomic_write_text


def keep_rows_before(path: Path, epoch: int) -> list[str]:
    """Rewrite the CSV at ``path`` without rows whose ``epoch`` is ``>= epoch``; return its header."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [r for r in reader if r.get("epoch") in (None, "") or int(float(r["epoch"])) < epoch]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return header


class _KeepingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, keep_before_epoch: int | None):
        self._keep = keep_before_epoch
        super().__init__(log_dir=log_dir)
        if self._keep is not None and Path(self.metrics_file_path).is_file():
            self.metrics_keys = keep_rows_before(Path(self.metrics_file_path), self._keep)

    def _check_log_dir_exists(self) -> None:
        if self._keep is None:
            super()._check_log_dir_exists()


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that appends across a resume (``keep_before_epoch``: the first epoch the resumed run trains)."""

    def __init__(self, *args, keep_before_epoch: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_before_epoch = keep_before_epoch

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _KeepingWriter(self.log_dir, self.keep_before_epoch)
        return self._experiment
