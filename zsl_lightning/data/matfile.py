"""Reading MATLAB files in both the classic (v5, scipy) and the v7.3 (HDF5, h5py) formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsl_lightning.errors import DataError


def read_mat(path: Path, keys: list[str], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Read ``keys`` from a .mat file; missing required keys raise a :class:`DataError`."""
    path = Path(path)
    import h5py

    if h5py.is_hdf5(str(path)):  # MATLAB v7.3 files are HDF5
        data = _read_mat73(path, keys + list(optional))
    else:
        try:
            from scipy.io import loadmat

            raw = loadmat(str(path))
        except Exception as e:  # corrupt, truncated or not a .mat file
            raise DataError(f"Could not read '{path}' as a MATLAB file: {e}") from None
        data = {k: raw[k] for k in keys + list(optional) if k in raw}
    missing = [k for k in keys if k not in data]
    if missing:
        raise DataError(f"'{path}' has no variable(s) {missing}; found {sorted(data)}.")
    return data


def _read_mat73(path: Path, keys: list[str]) -> dict[str, np.ndarray]:
    import h5py

    out = {}
    try:
        with h5py.File(path, "r") as f:
            for k in keys:
                if k not in f:
                    continue
                obj = f[k]
                if isinstance(obj, h5py.Dataset) and obj.dtype != object:
                    # MATLAB stores column-major: h5py sees the transpose.
                    out[k] = np.asarray(obj).T
                else:
                    out[k] = np.array([_deref_string(f, r) for r in np.asarray(obj).ravel()], dtype=object)
    except OSError as e:
        raise DataError(f"Could not read '{path}' as a MATLAB v7.3 (HDF5) file: {e}") from None
    return out


def _deref_string(f, ref) -> str:
    arr = np.asarray(f[ref]).ravel()
    return "".join(chr(int(c)) for c in arr)


def cellstr(arr: np.ndarray | None) -> list[str]:
    """Flatten a MATLAB cell array of strings (as read by scipy or h5py) to a Python list."""
    if arr is None:
        return []
    out = []
    for item in np.asarray(arr, dtype=object).ravel():
        while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
            item = item.ravel()[0]
        if isinstance(item, np.ndarray):
            item = item.ravel()[0] if item.size else ""
        out.append(str(item))
    return out
