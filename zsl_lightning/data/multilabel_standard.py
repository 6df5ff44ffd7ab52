"""``data.mode=standard``: standard multi-label classification (Gupta et al. Table 4, Liu et al. Table IV), one
protocol for every multi-label benchmark — feature vectors (:mod:`.multilabel_benchmark`) and feature maps
(:mod:`.maps_benchmark`).

LESA's protocol, as both papers use it: the U labels of the ZSL split (NUS-WIDE: the 81 human-annotated
concepts) are the only labels, all of them seen; training uses the training images' labels over those U labels
(NUS-WIDE's released files carry them only for some layouts: ``labels_81``), and the test images are the test
file's images with at least one positive among them, scored on all U labels. One evaluation task, ``std``.

:class:`StandardProtocol` is a mixin put before a benchmark class; the benchmark supplies where the two files
come from (:meth:`StandardProtocol._standard_files`) and how rows are read (its ``_store``), the mixin the label
space, the row choices and the split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from zsl_lightning.errors import DataError


class StandardProtocol:
    """``data.mode=standard`` on top of a multi-label benchmark class (see the module docstring).

    Label ids 0..U-1 are the benchmark's U unseen labels (NUS-WIDE: the 81 concepts, Concepts81 order), all
    seen. ``test``: train on every training image with ``min_positives..max_positives`` positives among them,
    evaluate the test images with at least one positive. ``dev``: the last ``val_image_fraction`` of the
    training rows are the validation images (again only those with a positive); no label is held out and the
    test file is not read.
    """

    mode = "standard"

    def _standard_files(self, s: int, u: int) -> tuple[Any, Any]:
        """``(training file, test file)``, each with labels over the U labels only (a benchmark's own readers:
        ``H5Info`` for vectors, a maps reader for feature maps)."""
        raise NotImplementedError

    def _inspect(self, s: int, u: int) -> None:
        tr, te = self._standard_files(s, u)
        if tuple(tr.feature_shape) != tuple(te.feature_shape):
            raise DataError(f"{self.name}: the feature shapes of the files differ: train {tr.feature_shape}, "
                            f"test {te.feature_shape}.")
        self.h5 = {"train": tr, "zsl_test": te}
        self._std_test_rows = self._valid_rows(te, np.arange(te.num_rows), None, 1, None)
        if len(self._std_test_rows) == 0:
            raise DataError(f"{self.name}: no test image of '{te.path}' has a positive label.")

    def _mode_info(self) -> dict[str, Any]:
        return {**super()._mode_info(), "mode": "standard"}

    def _counts(self) -> dict[str, int]:
        u = self.space.num_unseen
        return {"num_classes": u, "num_seen": u, "num_unseen": 0, "num_train_images": self.h5["train"].num_rows,
                "num_test_images": len(self._std_test_rows)}  # test images with at least one positive label

    def build_split(self, name: str):
        s, u = self.space.num_seen, self.space.num_unseen
        tr = self.h5["train"]
        if name == "test":
            train_rows = self._valid_rows(tr, np.arange(tr.num_rows), None)
            eval_info, eval_rows = self.h5["zsl_test"], self._std_test_rows
        else:
            n_val = self._num_val_images(tr)
            train_rows = self._valid_rows(tr, np.arange(tr.num_rows - n_val), None)
            eval_info = tr
            eval_rows = self._valid_rows(tr, np.arange(tr.num_rows - n_val, tr.num_rows), None, 1, None)
            if len(eval_rows) == 0:
                raise DataError(f"{self.name}: no validation image (the last {n_val} training rows) has a positive label.")
        if len(train_rows) == 0:
            raise DataError(f"{self.name}: no training image has {self.min_positives}..{self.max_positives} "
                            f"positive labels in '{tr.path}' ({self.standard_labels_key}).")
        prep = self._fit_prep(tr, train_rows)
        train = self._finish(self._store(tr, train_rows), prep)
        evals = self._finish(self._store(eval_info, eval_rows), prep)
        cols = torch.arange(u)
        return self._split(
            name, [(len(evals), u)], class_embeddings=torch.as_tensor(self.space.embeddings[s:]), seen_classes=cols,
            unseen_classes=cols[:0], train=train, train_cols=cols, eval_zsl=evals, eval_zsl_cols=cols[:0],
            eval_gzsl=evals, eval_gzsl_cols=cols, class_names=list(self.space.unseen_names))
