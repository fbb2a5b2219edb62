"""Spatial folds of basins: which basins are held out together when testing regionalization.

A fold scheme splits a set of basins into folds; each fold in turn is held out (the "unseen"
basins) while an emulator learns from the others. Every basin is held out exactly once. The
schemes (:data:`SPATIAL_FOLD_SCHEMES`, chosen by name):

``study``
    The interleaved folds of Tang, Wood & Swenson (2025): the basins sorted by gauge id (the
    study's hru_id order), fold ``k`` holds positions ``k, k + 5, k + 10, ...``. Five folds by
    default, each spread over the whole domain. No randomness.
``pub``
    Prediction in ungauged basins with random folds: the sorted basins are shuffled with
    ``seed`` and dealt to 10 folds in turn (sizes differ by at most one). The same seed gives
    the same folds whatever the order the basins come in.
``pur``
    Prediction in ungauged regions: seven groups of two-digit hydrologic unit (HUC-02) regions,
    ``[1, 2], [3, 6], [4, 5, 7], [9, 10], [8, 11, 12, 13], [14, 15, 16, 18], [17]``, so a whole
    region is unseen when it is tested. The HUC-02 code of a basin is the CAMELS attribute
    ``huc_02`` (``camels_name.txt``; a coordinate of the basins store's ``attributes`` group).
``flood_cluster``
    Leave one flood-generation cluster out: the 15 clusters of Brunner et al. (2020, GRL 47,
    e2020GL088000), read from ``ctsm_camels/flood_clusters_brunner2020.txt`` of the data
    directory (columns ``Camels_IDs``, ``flood_cluster``); one fold per cluster present.

Every scheme is ``scheme(basins, inputs) -> (fold, labels)``: ``fold`` the fold number of each
basin (in the order given), ``labels`` a name per fold. :func:`make_folds` wraps the result in a
:class:`SpatialFolds`, which also maps the folds onto the rows of a training set
(:meth:`SpatialFolds.row_folds`), the same ``[(train_rows, test_rows), ...]`` form that the
emulators' cross-validation uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo.errors import UnknownBasinError
from lsegeo.registry import Registry

__all__ = ["SPATIAL_FOLD_SCHEMES", "PUR_REGION_GROUPS", "FLOOD_CLUSTER_FILE", "FoldInputs", "SpatialFolds",
           "make_folds", "read_flood_clusters", "huc02_codes", "pur_regions", "study_folds", "pub_folds", "pur_folds",
           "flood_cluster_folds"]

logger = logging.getLogger(__name__)

#: the HUC-02 regions held out together by the ``pur`` scheme, one group per fold
PUR_REGION_GROUPS: tuple[tuple[int, ...], ...] = ((1, 2), (3, 6), (4, 5, 7), (9, 10), (8, 11, 12, 13),
                                                  (14, 15, 16, 18), (17,))
#: the flood-generation clusters of Brunner et al. (2020), relative to the data directory
FLOOD_CLUSTER_FILE = Path("ctsm_camels") / "flood_clusters_brunner2020.txt"


@dataclass(frozen=True)
class FoldInputs:
    """What a fold scheme may need besides the basins.

    Attributes
    ----------
    n_folds : int or None
        Folds of the ``study`` (default 5) and ``pub`` (default 10) schemes; the ``pur`` and
        ``flood_cluster`` schemes have as many folds as groups and ignore it.
    seed : int
        Seed of the ``pub`` shuffle.
    huc02 : mapping of str to int, optional
        Gauge id -> HUC-02 region, for ``pur`` (see :func:`huc02_codes`).
    flood_clusters : mapping of str to int, optional
        Gauge id -> flood cluster, for ``flood_cluster``; default read from
        :data:`FLOOD_CLUSTER_FILE` in the data directory (:func:`read_flood_clusters`).
    """

    n_folds: int | None = None
    seed: int = 0
    huc02: Mapping[str, int] | None = None
    flood_clusters: Mapping[str, int] | None = None


@dataclass
class SpatialFolds:
    """Basins split into folds, each held out once.

    Attributes
    ----------
    scheme : str
        Name of the scheme in :data:`SPATIAL_FOLD_SCHEMES`.
    basins : list of str
        Gauge ids, in the order given to :func:`make_folds`.
    fold : numpy.ndarray
        ``(n_basins,)`` int fold of each basin, ``0 .. n_folds - 1``.
    labels : list of str
        A name per fold (``"fold 0"``, ``"HUC 01+02"``, ``"cluster 9"``).
    """

    scheme: str
    basins: list[str]
    fold: np.ndarray
    labels: list[str] = field(default_factory=list)

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.labels)

    def test_basins(self, k: int) -> list[str]:
        """The gauge ids held out in fold ``k``."""
        return [b for b, f in zip(self.basins, self.fold, strict=True) if f == k]

    def train_basins(self, k: int) -> list[str]:
        """The gauge ids an emulator learns from when fold ``k`` is held out."""
        return [b for b, f in zip(self.basins, self.fold, strict=True) if f != k]

    def __iter__(self) -> Iterator[tuple[list[str], list[str]]]:
        """``(train_basins, test_basins)`` of each fold in turn."""
        for k in range(self.n_folds):
            yield self.train_basins(k), self.test_basins(k)

    def sizes(self) -> list[int]:
        """Held-out basins per fold."""
        return np.bincount(self.fold, minlength=self.n_folds).tolist()

    def row_folds(self, ts: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """The folds as rows of a training set: ``[(train_rows, test_rows), ...]``.

        Parameters
        ----------
        ts : lsegeo.emulators.features.TrainingSet
            Every basin of it that has rows must be among :attr:`basins` (basins with
            attributes only need no fold).

        Returns
        -------
        list of (numpy.ndarray, numpy.ndarray)
            One pair of int row indices per fold; no basin's rows are on both sides.

        Raises
        ------
        UnknownBasinError
            A basin with rows in the training set has no fold.
        """
        pos = {b: i for i, b in enumerate(self.basins)}
        with_rows = np.unique(ts.basin_index)
        missing = [ts.basins[b] for b in with_rows if ts.basins[b] not in pos]
        if missing:
            raise UnknownBasinError(f"{len(missing)} basins of the training set have no {self.scheme!r} fold, "
                                    f"e.g. {missing[:5]}")
        fold_of_ts_basin = np.array([self.fold[pos[b]] if b in pos else -1 for b in ts.basins], dtype=np.int64)
        row_fold = fold_of_ts_basin[ts.basin_index]
        rows = np.arange(len(ts))
        return [(rows[row_fold != k], rows[row_fold == k]) for k in range(self.n_folds)]


# -- inputs ---------------------------------------------------------------------------------------

def huc02_codes(attributes: Any) -> dict[str, int]:
    """Gauge id -> HUC-02 region from an attributes table.

    Parameters
    ----------
    attributes : xarray.Dataset or pandas.DataFrame
        The basins store's ``attributes`` group (``huc_02`` over ``basin``, stored as text such
        as ``"01"``), or a table indexed by gauge id with a ``huc_02`` column.

    Returns
    -------
    dict of str to int

    Raises
    ------
    ValueError
        No ``huc_02``, or a code that is not a whole number.
    """
    if "huc_02" not in getattr(attributes, "variables", getattr(attributes, "columns", ())):
        raise ValueError("the attributes have no 'huc_02' (the HUC-02 region of camels_name.txt)")
    if hasattr(attributes, "variables"):
        gauges = [str(b) for b in attributes["basin"].values]
    else:
        gauges = [str(b) for b in attributes.index]
    codes: dict[str, int] = {}
    for gauge, raw in zip(gauges, np.asarray(attributes["huc_02"].values).tolist(), strict=True):
        try:
            value = float(str(raw).strip())
        except ValueError:
            value = np.nan
        if not np.isfinite(value) or value != int(value):
            raise ValueError(f"basin {gauge}: huc_02 {raw!r} is not a HUC-02 region number")
        codes[gauge] = int(value)
    return codes


def pur_regions(attributes: Any) -> dict[str, str]:
    """Gauge id -> its PUR region, the group of HUC-02 regions of :data:`PUR_REGION_GROUPS` (``"HUC 04+05+07"``).

    Parameters
    ----------
    attributes : xarray.Dataset or pandas.DataFrame
        As for :func:`huc02_codes`.

    Returns
    -------
    dict of str to str
        ``"HUC ?"`` for a HUC-02 region in no group.
    """
    label = {r: "HUC " + "+".join(f"{x:02d}" for x in g) for g in PUR_REGION_GROUPS for r in g}
    return {b: label.get(h, "HUC ?") for b, h in huc02_codes(attributes).items()}


def read_flood_clusters(path: str | Path | None = None, data_dir: str | Path | None = None) -> dict[str, int]:
    """Gauge id -> flood-generation cluster of Brunner et al. (2020).

    Parameters
    ----------
    path : path-like, optional
        A comma-separated table with the header ``Camels_IDs,flood_cluster``; default
        :data:`FLOOD_CLUSTER_FILE` in the data directory.
    data_dir : path-like, optional
        The data directory (:func:`lsegeo.locations.resolve_data_dir`).

    Returns
    -------
    dict of str to int
        Eight-digit gauge ids (leading zeros kept) to cluster numbers.

    Raises
    ------
    lsegeo.errors.DataNotFoundError
        The file is not found.
    InputFormatError
        The file is malformed (:func:`lsegeo.io.camels.read_flood_cluster_table`).
    """
    from lsegeo.io.camels import read_flood_cluster_table
    from lsegeo.locations import resolve_data_dir

    if path is None:
        path = resolve_data_dir(data_dir, expect=str(FLOOD_CLUSTER_FILE)) / FLOOD_CLUSTER_FILE
    table = read_flood_cluster_table(path)
    return dict(zip(table.index.tolist(), table.to_numpy().tolist(), strict=True))


# -- the schemes ----------------------------------------------------------------------------------

Scheme = Callable[[list[str], FoldInputs], tuple[np.ndarray, list[str]]]


def _sorted_positions(basins: list[str]) -> np.ndarray:
    """Rank of each basin in the sorted order of the gauge ids."""
    rank = np.empty(len(basins), dtype=np.int64)
    rank[np.argsort(np.array(basins, dtype=object), kind="stable")] = np.arange(len(basins))
    return rank


def _check_n(n_folds: int, n_basins: int, scheme: str) -> None:
    if n_folds < 2:
        raise ValueError(f"the {scheme!r} scheme needs at least 2 folds, got {n_folds}")
    if n_basins < n_folds:
        raise ValueError(f"the {scheme!r} scheme with {n_folds} folds needs at least {n_folds} basins, "
                         f"got {n_basins}")


def study_folds(basins: list[str], inputs: FoldInputs) -> tuple[np.ndarray, list[str]]:
    """The study's interleaved folds: sorted position modulo ``n_folds`` (default 5)."""
    n = inputs.n_folds or 5
    _check_n(n, len(basins), "study")
    return _sorted_positions(basins) % n, [f"fold {k}" for k in range(n)]


def pub_folds(basins: list[str], inputs: FoldInputs) -> tuple[np.ndarray, list[str]]:
    """Random folds (default 10): the sorted basins shuffled with the seed, dealt in turn."""
    n = inputs.n_folds or 10
    _check_n(n, len(basins), "pub")
    perm = np.random.default_rng(inputs.seed).permutation(len(basins))
    fold_of_sorted = np.empty(len(basins), dtype=np.int64)
    fold_of_sorted[perm] = np.arange(len(basins)) % n
    return fold_of_sorted[_sorted_positions(basins)], [f"random fold {k}" for k in range(n)]


def _lookup(basins: list[str], table: Mapping[str, int], what: str) -> np.ndarray:
    missing = [b for b in basins if b not in table]
    if missing:
        raise UnknownBasinError(f"{len(missing)} basins have no {what}, e.g. {missing[:5]}")
    return np.array([int(table[b]) for b in basins], dtype=np.int64)


def pur_folds(basins: list[str], inputs: FoldInputs) -> tuple[np.ndarray, list[str]]:
    """One fold per group of HUC-02 regions (:data:`PUR_REGION_GROUPS`); needs ``inputs.huc02``."""
    if inputs.huc02 is None:
        raise ValueError("the 'pur' scheme needs the HUC-02 region of every basin (huc02=..., see huc02_codes)")
    regions = _lookup(basins, inputs.huc02, "HUC-02 region")
    group_of = {r: g for g, members in enumerate(PUR_REGION_GROUPS) for r in members}
    unknown = sorted({int(r) for r in regions if r not in group_of})
    if unknown:
        raise ValueError(f"HUC-02 regions {unknown} are in no PUR group {PUR_REGION_GROUPS}")
    labels = ["HUC " + "+".join(f"{r:02d}" for r in members) for members in PUR_REGION_GROUPS]
    return np.array([group_of[int(r)] for r in regions], dtype=np.int64), labels


def flood_cluster_folds(basins: list[str], inputs: FoldInputs) -> tuple[np.ndarray, list[str]]:
    """Leave one flood cluster out: one fold per cluster present among the basins."""
    table = inputs.flood_clusters if inputs.flood_clusters is not None else read_flood_clusters()
    clusters = _lookup(basins, table, "flood cluster")
    present = np.unique(clusters)
    return np.searchsorted(present, clusters), [f"cluster {c}" for c in present.tolist()]


#: spatial fold schemes by name: ``scheme(basins, FoldInputs) -> (fold per basin, fold labels)``
SPATIAL_FOLD_SCHEMES: Registry[Scheme] = Registry("fold scheme", {
    "study": "lsegeo.regionalize.folds:study_folds",
    "pub": "lsegeo.regionalize.folds:pub_folds",
    "pur": "lsegeo.regionalize.folds:pur_folds",
    "flood_cluster": "lsegeo.regionalize.folds:flood_cluster_folds",
})


def make_folds(scheme: str, basins: Sequence[str], *, n_folds: int | None = None, seed: int = 0,
               attributes: Any = None, huc02: Mapping[str, int] | None = None,
               flood_clusters: Mapping[str, int] | str | Path | None = None) -> SpatialFolds:
    """Split basins into the folds of a scheme.

    Parameters
    ----------
    scheme : str
        A name in :data:`SPATIAL_FOLD_SCHEMES`: ``study``, ``pub``, ``pur``, ``flood_cluster``.
    basins : sequence of str
        Gauge ids (no repeats).
    n_folds : int, optional
        Folds of ``study`` (default 5) and ``pub`` (default 10).
    seed : int
        Seed of ``pub``.
    attributes : xarray.Dataset or pandas.DataFrame, optional
        Basin attributes with ``huc_02``, for ``pur`` (alternatively ``huc02``).
    huc02 : mapping of str to int, optional
        Gauge id -> HUC-02 region, for ``pur``.
    flood_clusters : mapping or path-like, optional
        Gauge id -> cluster, or the file to read them from, for ``flood_cluster``; default the
        file in the data directory.

    Returns
    -------
    SpatialFolds

    Raises
    ------
    lsegeo.errors.UnknownNameError
        ``scheme`` is not registered; the message lists the known schemes.
    UnknownBasinError
        A basin has no HUC-02 region or flood cluster.
    ValueError
        Repeated basins, fewer basins than folds, fewer than 2 folds, or (``pur``) no HUC-02
        codes or a region in no group.
    lsegeo.errors.InputFormatError
        The flood-cluster file is malformed (:func:`lsegeo.io.camels.read_flood_cluster_table`).
    """
    make = SPATIAL_FOLD_SCHEMES.get(scheme)
    basins = [str(b) for b in basins]
    if len(set(basins)) != len(basins):
        raise ValueError("basins must not repeat")
    if huc02 is None and attributes is not None:
        huc02 = huc02_codes(attributes)
    if isinstance(flood_clusters, (str, Path)):
        flood_clusters = read_flood_clusters(flood_clusters)
    fold, labels = make(basins, FoldInputs(n_folds=n_folds, seed=seed, huc02=huc02, flood_clusters=flood_clusters))
    out = SpatialFolds(scheme=scheme, basins=basins, fold=np.asarray(fold, dtype=np.int64), labels=list(labels))
    logger.debug("%s folds of %d basins: sizes %s", scheme, len(basins), out.sizes())
    return out
