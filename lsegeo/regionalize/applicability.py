"""Domain of applicability: how far a target lies from the training basins in attribute space.

An emulator learnt from some basins is trusted less for a target whose attributes are unlike
theirs. :class:`Applicability` measures it:

1. **Standardize** each encoded attribute column (the emulator's feature columns,
   :meth:`lsegeo.emulators.features.AttributeEncoder.transform`) by the training basins' mean and
   standard deviation, ``z = (x - mean) / std`` (a column constant over the training basins
   has std 0 and is divided by 1).
2. **Distance** of a row: the mean Euclidean distance in ``z`` space to its ``k`` nearest
   training rows (``k = 5`` by default), found with :class:`scipy.spatial.cKDTree`.
3. **Threshold**: the ``quantile`` (default 0.95) of the training rows' own leave-one-out
   distances (each training row's mean distance to its ``k`` nearest *other* training rows).
   A row whose distance is above it **extrapolates** (:meth:`Applicability.flag` gives 1).
   Thus about 5 % of the training basins themselves are flagged: the threshold marks the edge
   of the bulk of the training data, not its hull.

Sources and differences. This follows the idea of the area of applicability of Meyer &
Pebesma (2021, Methods Ecol. Evol. 12, 1620-1633, doi:10.1111/2041-210X.13650): standardized
predictors, a distance to the nearest training data, and a threshold taken from the training
data's own distances. Their dissimilarity index differs from ours in that it (a) weights each
predictor by its importance in the model, (b) uses the distance to the single nearest training
point, (c) divides it by the mean distance between training points, and (d) takes as threshold
the upper whisker (75th percentile + 1.5 IQR) of the training points' distances to the nearest
point of another cross-validation fold. Ours needs no model internals (any emulator backend),
averages over ``k`` neighbours so that one stray training basin near a target does not make it
look well covered (the k-nearest-neighbour outlier score of Angiulli & Pizzuti 2002, PKDD,
LNCS 2431, 15-27, up to the factor 1/k), and is in standard-deviation units, so a distance
reads directly.

Rows are processed in chunks (``chunk_size`` rows per tree query), so 10^5 grid cells take
bounded memory: ``chunk_size x k`` distances at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsegeo.errors import ConfigError, InputFormatError

__all__ = ["Applicability", "DEFAULT_K", "DEFAULT_QUANTILE"]

logger = logging.getLogger(__name__)

#: neighbours averaged over
DEFAULT_K = 5
#: quantile of the training rows' leave-one-out distances that is the threshold
DEFAULT_QUANTILE = 0.95


def _matrix(rows: Any, what: str, width: int | None = None) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim == 1 and width is not None and x.size == width:
        x = x[None, :]
    if x.ndim != 2 or (width is not None and x.shape[1] != width):
        raise InputFormatError(what, None, f"shape {x.shape}; expected (rows, {width if width is not None else 'n'}) "
                               "encoded attribute columns")
    return x


@dataclass
class Applicability:
    """A fitted domain-of-applicability measure (see the module docstring for the definition).

    Attributes
    ----------
    mean, scale : numpy.ndarray
        ``(n_features,)`` training mean and standard deviation (1 where it is 0).
    train : numpy.ndarray
        ``(n_train, n_features)`` standardized training rows.
    k : int
        Neighbours averaged over (at most ``n_train - 1``).
    quantile : float
        Quantile of the leave-one-out distances that is the threshold.
    threshold : float
        Distances above it extrapolate.
    train_distance : numpy.ndarray
        ``(n_train,)`` leave-one-out distances of the training rows.
    """

    mean: np.ndarray
    scale: np.ndarray
    train: np.ndarray
    k: int
    quantile: float
    threshold: float
    train_distance: np.ndarray
    _tree: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def fit(cls, train_rows: Any, k: int = DEFAULT_K, quantile: float = DEFAULT_QUANTILE,
            chunk_size: int = 65536) -> Applicability:
        """Fit on the encoded attribute rows of the training basins.

        Parameters
        ----------
        train_rows : array-like
            ``(n_train, n_features)`` finite encoded attributes, one row per training basin.
        k : int
            Neighbours averaged over; lowered to ``n_train - 1`` for few basins.
        quantile : float
            In (0, 1]: the threshold is this quantile of the leave-one-out distances.
        chunk_size : int
            Rows per tree query.

        Raises
        ------
        ConfigError
            ``k < 1`` or ``quantile`` outside (0, 1].
        InputFormatError
            Fewer than 2 rows, or non-finite values.
        """
        if int(k) < 1:
            raise ConfigError(f"applicability k {k}: expected at least 1 neighbour")
        if not 0.0 < float(quantile) <= 1.0:
            raise ConfigError(f"applicability quantile {quantile}: expected a number in (0, 1]")
        x = _matrix(train_rows, "training attribute rows")
        if x.shape[0] < 2:
            raise InputFormatError("training attribute rows", None, f"{x.shape[0]} rows; at least 2 training basins "
                                   "are needed for a domain of applicability")
        if not np.all(np.isfinite(x)):
            raise InputFormatError("training attribute rows", None, "non-finite values; encode the attributes first "
                                   "(the encoder fills missing values)")
        mean, std = x.mean(axis=0), x.std(axis=0)
        scale = np.where(std > 0, std, 1.0)
        k_eff = min(int(k), x.shape[0] - 1)
        if k_eff < int(k):
            logger.info("applicability: %d training rows, k lowered from %d to %d", x.shape[0], k, k_eff)
        z = (x - mean) / scale
        out = cls(mean=mean, scale=scale, train=z, k=k_eff, quantile=float(quantile), threshold=np.nan,
                  train_distance=np.empty(0))
        # leave one out: the k + 1 nearest include the row itself (distance 0), dropped
        loo = out._mean_knn(z, k_eff + 1, chunk_size, drop_first=True)
        out.train_distance = loo
        out.threshold = float(np.quantile(loo, quantile))
        return out

    def _query_tree(self):
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.train)
        return self._tree

    def _mean_knn(self, z: np.ndarray, k: int, chunk_size: int, drop_first: bool = False) -> np.ndarray:
        tree = self._query_tree()
        out = np.empty(z.shape[0])
        for start in range(0, z.shape[0], max(1, int(chunk_size))):
            d, _ = tree.query(z[start:start + chunk_size], k=k)
            d = d.reshape(len(d), k)
            out[start:start + chunk_size] = (d[:, 1:] if drop_first else d).mean(axis=1)
        return out

    def distance(self, rows: Any, chunk_size: int = 65536) -> np.ndarray:
        """Mean Euclidean distance in standardized attribute space to the ``k`` nearest training rows.

        Parameters
        ----------
        rows : array-like
            ``(n, n_features)`` encoded attributes (same columns as at fitting).
        chunk_size : int
            Rows per tree query (memory ``chunk_size x k`` floats).

        Returns
        -------
        numpy.ndarray
            ``(n,)`` float64 distances (standard-deviation units); NaN for a row with a non-finite value.
        """
        x = _matrix(rows, "attribute rows", self.mean.size)
        z = (x - self.mean) / self.scale
        ok = np.all(np.isfinite(z), axis=1)
        out = np.full(z.shape[0], np.nan)
        if ok.any():
            out[ok] = self._mean_knn(z[ok], self.k, chunk_size)
        return out

    def flag(self, rows: Any, chunk_size: int = 65536) -> np.ndarray:
        """1 where a row extrapolates (distance above the threshold or unknown), else 0; ``(n,)`` int8."""
        d = self.distance(rows, chunk_size)
        return (~(d <= self.threshold)).astype(np.int8)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the standardized training rows included)."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "train": self.train.tolist(), "k": self.k,
                "quantile": self.quantile, "threshold": self.threshold,
                "train_distance": self.train_distance.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Applicability:
        """Inverse of :meth:`to_dict`."""
        return cls(mean=np.asarray(d["mean"], float), scale=np.asarray(d["scale"], float),
                   train=np.asarray(d["train"], float).reshape(-1, len(d["mean"])), k=int(d["k"]),
                   quantile=float(d["quantile"]), threshold=float(d["threshold"]),
                   train_distance=np.asarray(d["train_distance"], float))
