"""A read-only HDF5 handle that opens on first use and again after a fork (so readers can go to DataLoader
workers and be pickled without an open file)."""

from __future__ import annotations

import os


class LazyH5:
    """Mixin: ``self.path`` is opened read-only by :meth:`_file`; ``close`` releases it."""

    _f = None
    _pid = None

    def _file(self):
        import h5py

        if self._f is None or self._pid != os.getpid():
            self._f, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._f

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __getstate__(self):
        return {**self.__dict__, "_f": None, "_pid": None}
