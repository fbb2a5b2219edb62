"""Which parameters to calibrate: the smallest set carrying a share of the first-order sensitivity.

The study (Tang, Wood & Swenson 2025) calibrated, per flood-generation cluster, the parameters
whose normalised first-order indices sum to 85 % of the total; :func:`select_parameters` makes
that selection per basin, per cluster or once for all basins, and :func:`format_selection`
prints it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.conventions import BASIN, PARAM
from lsegeo.sensitivity.clusters import aggregate_by_cluster, cluster_of, read_clusters
from lsegeo.sensitivity.indices import as_indices, normalise_indices, str_coord

__all__ = ["select_parameters", "format_selection"]


def _pick(v: np.ndarray, names: list[str], share: float) -> list[str]:
    """Smallest set of names whose clipped, normalised values reach ``share``; in ``names`` order."""
    w = np.clip(np.asarray(v, dtype=np.float64), 0, None)
    total = w.sum()
    if not np.isfinite(total) or total <= 0:
        return list(names)  # no information: screen nothing out
    w = w / total
    order = np.argsort(-w, kind="stable")
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, share * (1 - 1e-12))) + 1
    chosen = set(order[:min(k, len(names))].tolist())
    return [n for j, n in enumerate(names) if j in chosen]


def select_parameters(
    S1: xr.Dataset | xr.DataArray | pd.Series | pd.DataFrame,
    share: float = 0.85,
    by: Literal["basin", "cluster", "all"] = "cluster",
    clusters: pd.Series | None = None,
    *,
    keyed_by: Literal["basin", "cluster"] = "basin",
) -> dict[Any, list[str]] | list[str]:
    """The smallest set of parameters carrying ``share`` of the summed first-order sensitivity.

    Indices are clipped at 0 and normalised to sum to 1 per basin
    (:func:`~lsegeo.sensitivity.indices.normalise_indices`); the parameters are taken in
    decreasing order of (mean) normalised index until their sum reaches ``share``.

    Parameters
    ----------
    S1 : xarray.Dataset, xarray.DataArray, pandas.Series or pandas.DataFrame
        ``S1(basin, param)`` (a Dataset's ``S1``; a DataFrame with basins as rows and parameters as
        columns), or one vector over ``param`` (a 1-D DataArray, or a Series indexed by name).
    share : float
        Share in (0, 1] of the summed sensitivity to reach (0.85 per cluster in the study).
    by : {"basin", "cluster", "all"}
        Select per basin, per cluster (on the cluster's mean normalised indices,
        :func:`~lsegeo.sensitivity.clusters.aggregate_by_cluster`) or once for all basins
        (their mean normalised indices). A single vector needs ``"all"``.
    clusters : pandas.Series, optional
        Cluster of each gauge id, for ``by="cluster"``; default
        :func:`~lsegeo.sensitivity.clusters.read_clusters` (from the data directory).
    keyed_by : {"basin", "cluster"}
        With ``by="cluster"``: key the result by basin (each basin gets its cluster's set; a
        basin without a cluster gets its own per-basin set) or by cluster number.

    Returns
    -------
    dict or list
        ``{basin: [names]}`` (or ``{cluster: [names]}``) for ``"basin"`` and ``"cluster"``,
        ``[names]`` for ``"all"``; names always in the order of the ``param`` coordinate (the
        parameter space's order). A basin or cluster without usable indices (all NaN or not
        positive) keeps every parameter.

    Raises
    ------
    ValueError
        ``share``, ``by`` or ``keyed_by`` is out of range, or the indices are not over
        ``(basin, param)`` (or a vector with ``by="all"``).
    lsegeo.errors.DataNotFoundError
        ``by="cluster"`` without ``clusters`` and the cluster table is absent.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if by not in ("basin", "cluster", "all"):
        raise ValueError(f"by must be 'basin', 'cluster' or 'all', got {by!r}")
    if isinstance(S1, pd.Series):
        S1 = xr.DataArray(S1.to_numpy(dtype=float), dims=("param",), coords={"param": [str(i) for i in S1.index]})
    elif isinstance(S1, pd.DataFrame):
        S1 = xr.DataArray(S1.to_numpy(dtype=float), dims=("basin", "param"),
                          coords={"basin": [str(i) for i in S1.index], "param": [str(c) for c in S1.columns]})
    da = str_coord(as_indices(S1), PARAM)
    names = list(da["param"].values)
    if da.ndim == 1:
        if by != "all":
            raise ValueError(f"a single vector of indices needs by='all', got by={by!r}")
        return _pick(da.values, names, share)
    if da.ndim != 2 or "basin" not in da.dims:
        raise ValueError(f"expected indices over (basin, param), got dims {da.dims}")
    da = str_coord(da, BASIN).transpose(BASIN, PARAM)
    if by == "all":
        norm = normalise_indices(da).values
        ok = np.isfinite(norm).all(axis=1)
        return _pick(norm[ok].mean(axis=0) if ok.any() else np.full(len(names), np.nan), names, share)
    norm = normalise_indices(da).values
    per_basin = {b: _pick(v, names, share) for b, v in zip(da["basin"].values, norm, strict=True)}
    if by == "basin":
        return per_basin
    if clusters is None:
        clusters = read_clusters()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        agg = aggregate_by_cluster(da, clusters)
    per_cluster = {int(c): _pick(v, names, share)
                   for c, v in zip(agg["cluster"].values, agg["S1_norm"].values, strict=True)}
    if keyed_by == "cluster":
        return per_cluster
    if keyed_by != "basin":
        raise ValueError(f"keyed_by must be 'basin' or 'cluster', got {keyed_by!r}")
    cl = cluster_of(clusters)
    return {b: per_cluster[int(cl[b])] if b in cl.index else per_basin[b] for b in per_basin}


def format_selection(selection: dict[Any, list[str]], param_names: Sequence[str],
                     counts: dict[Any, int] | None = None) -> list[str]:
    """Printable lines of a selection per cluster (:func:`select_parameters` with ``keyed_by="cluster"``).

    Parameters
    ----------
    selection : dict
        ``{cluster: [parameters]}``.
    param_names : sequence of str
        Every parameter (the count that is kept is out of these).
    counts : dict, optional
        Basins per cluster, shown when given.

    Returns
    -------
    list of str
    """
    d = len(param_names)
    lines = []
    for c, names in selection.items():
        n = f" ({counts[c]} basins)" if counts and c in counts else ""
        lines.append(f"  cluster {c!s:>2s}{n:14s} {len(names):2d} of {d}: {', '.join(names)}")
    return lines
