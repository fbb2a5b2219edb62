"""An archive of well-spread good points per GA run: the best point of each grid cell.

A converged GA population is often packed far tighter than ``min_distance``, so its final
population alone gives few distinct proposals. The archive keeps good points that are spread
out: every evaluated point falls in a cell of side ``CELL * min_distance``, only the best point
of a cell is kept, and of those the ``SIZE * pop_size`` best cells. At the end the archive joins
the final population as candidates (:mod:`lsegeo.optimise.candidates`). Algorithms whose
population is spread by crowding (NSGA-II) keep none (:attr:`Algorithm.archive
<lsegeo.optimise.algorithms.Algorithm>`).
"""

from __future__ import annotations

import numpy as np

from lsegeo.optimise.problem import Setup

__all__ = ["CELL", "SIZE", "Archive", "archive_size"]

#: Cell side / ``min_distance``.
CELL = 1.0
#: Cells kept per run / ``pop_size``.
SIZE = 2


def archive_size(s: Setup) -> int:
    """Cells kept per run for the setup: ``SIZE * pop_size``, or 0 for algorithms without archive."""
    return SIZE * s.pop_size if s.algo.archive else 0


class Archive:
    """Per run, the best point of each grid cell, for the ``size`` best cells seen so far.

    Parameters
    ----------
    n_runs : int
        Runs (rows of the archive).
    size : int
        Cells kept per run; 0 disables the archive (also when ``min_distance`` is 0).
    n_params : int
        Dimensions.
    min_distance : float
        Sets the cell side, ``CELL * min_distance``.
    """

    def __init__(self, n_runs: int, size: int, n_params: int, min_distance: float) -> None:
        self.A = size if min_distance > 0 else 0
        self.cell = CELL * min_distance if min_distance > 0 else 1.0
        self.X = np.zeros((n_runs, self.A, n_params))
        self.F = np.full((n_runs, self.A), np.inf)            # inf: empty slot
        self.H = np.full((n_runs, self.A), np.nan)              # cell key of each slot
        self.w = 1.0 + np.random.default_rng(0xA5C).random(n_params)

    def update(self, runs: np.ndarray | slice | list[int], X: np.ndarray, F: np.ndarray) -> None:
        """Add evaluated points to the archives of ``runs``.

        Parameters
        ----------
        runs : slice, list or array of int
            The runs, ``R'`` of them.
        X : numpy.ndarray
            ``(R', n, D)`` points.
        F : numpy.ndarray
            ``(R', n)`` their (first) objective, to minimise.
        """
        if self.A == 0:
            return
        A = self.A
        H = (np.floor(X * (1.0 / self.cell)) * self.w).sum(-1)       # cell key, equal within a cell
        Hm = np.concatenate([self.H[runs], H], axis=1)
        Fm = np.concatenate([self.F[runs], F], axis=1)
        o = np.argsort(Fm, axis=1)                                     # by objective ...
        o = np.take_along_axis(o, np.argsort(np.take_along_axis(Hm, o, 1), axis=1, kind="stable"), 1)
        hs = np.take_along_axis(Hm, o, 1)                              # ... within cells
        first = np.ones(hs.shape, dtype=bool)
        first[:, 1:] = hs[:, 1:] != hs[:, :-1]
        Fs = np.where(first, np.take_along_axis(Fm, o, 1), np.inf)     # the best of each cell
        top = np.argpartition(Fs, A - 1, axis=1)[:, :A] if Fs.shape[1] > A else np.argsort(Fs, axis=1)
        kept = np.zeros(Fm.shape, dtype=bool)
        np.put_along_axis(kept, np.take_along_axis(o, top, 1), np.isfinite(np.take_along_axis(Fs, top, 1)), 1)
        # slots of archived points not kept are freed; the kept new points fill the first of them
        rows = np.arange(self.F.shape[0])[runs]
        freed = ~kept[:, :A]
        enter = kept[:, A:]
        fr, fs = np.nonzero(freed)
        self.F[rows[fr], fs] = np.inf
        self.H[rows[fr], fs] = np.nan
        fr, fs = np.nonzero(freed & (np.cumsum(freed, 1) <= enter.sum(1)[:, None]))
        er, ei = np.nonzero(enter)
        self.X[rows[fr], fs] = X[er, ei]
        self.F[rows[fr], fs] = F[er, ei]
        self.H[rows[fr], fs] = H[er, ei]

    def points(self, run: int) -> tuple[np.ndarray, np.ndarray]:
        """The archived points of ``run``: ``X (k, D)`` and ``F (k, 1)``."""
        ok = np.isfinite(self.F[run])
        return self.X[run][ok], self.F[run][ok][:, None]
