"""Feature preprocessing fitted on a split's training features, one implementation for both label modes.

Single-label splits fit on one array (:func:`fit_preprocessing`); multi-label splits stream the training
file in chunks (:func:`fit_streamed`): ``minmax`` accumulates the per-element min and max over the chunks,
which gives the very same numbers as one pass over the whole array (min / max are exact, and the max of
the scaled training features is ``(hi - lo) / scale`` by monotonicity of rounding).

Features may have any trailing shape (``N x D``, ``N x C x H x W``): statistics are per element of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from zsl_lightning.errors import ConfigError


def identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def l2_rows(x: np.ndarray) -> np.ndarray:
    """Each row (a vector or a whole feature map) divided by its L2 norm; float32."""
    norm = np.linalg.norm(x.reshape(len(x), -1), axis=1)
    return (x / np.maximum(norm, 1e-12).reshape(-1, *([1] * (x.ndim - 1)))).astype(np.float32)


@dataclass
class MinMax:
    """Reference preprocessing (every released f-CLSWGAN-derived script): sklearn-style MinMaxScaler
    fitted on the training features, then everything × 1/max(scaled training features).

    The arithmetic runs in the dtype the statistics were fitted in (float32 for float32 features), then
    the result is float32. ``lo`` / ``scale`` have the shape of one feature (no flatten)."""

    lo: np.ndarray
    scale: np.ndarray
    mx: float

    @classmethod
    def fit(cls, chunks: Iterable[np.ndarray]) -> MinMax:
        lo = hi = None
        for x in chunks:
            lo = x.min(0) if lo is None else np.minimum(lo, x.min(0))
            hi = x.max(0) if hi is None else np.maximum(hi, x.max(0))
        scale = hi - lo
        scale[scale == 0] = 1.0  # sklearn handles constant columns the same way
        mx = float(((hi - lo) / scale).max()) or 1.0
        return cls(lo, scale, mx)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.subtract(x, self.lo, dtype=self.lo.dtype)  # one new array, then in place (chunks are ~134 MB)
        out /= self.scale
        out /= self.mx
        return out.astype(np.float32, copy=False)


def fit_streamed(chunks: Callable[[], Iterable[np.ndarray]], kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """``minmax`` | ``l2`` | ``none`` fitted on the training features that ``chunks()`` yields (read only
    when the kind has statistics to fit)."""
    if kind == "none":
        return identity
    if kind == "l2":
        return l2_rows
    if kind == "minmax":
        return MinMax.fit(chunks())
    raise ConfigError(f"data.preprocess must be one of minmax | standard | l2 | none, got '{kind}'.")


def fit_preprocessing(train: np.ndarray, kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """Return a function applying the preprocessing fitted on ``train`` (all outputs float32).

    ``minmax`` (reference, every released script): :class:`MinMax`. ``standard``: the other option of
    LisGAN's loader (``--standardization``): per-dimension zero mean and unit variance fitted on the
    training features, then everything multiplied by 1/max(train) as above. ``l2``: each feature vector
    L2-normalised. ``none``: features unchanged.
    """
    if kind == "standard":
        mean, std = train.mean(0), train.std(0)
        std[std == 0] = 1.0  # sklearn's StandardScaler leaves constant columns unscaled
        mx = float(((train - mean) / std).max()) or 1.0
        return lambda x: ((x - mean) / std / mx).astype(np.float32)
    return fit_streamed(lambda: (train,), kind)
