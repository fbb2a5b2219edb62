"""The flood-generation clusters of the CAMELS basins (Brunner et al. 2020) and indices per cluster.

The study (Tang, Wood & Swenson 2025) screened parameters per cluster of basins rather than per
basin: :func:`read_clusters` reads the cluster of each gauge, :func:`aggregate_by_cluster`
averages the normalised first-order indices of a cluster's basins.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.conventions import BASIN, CLUSTER, PARAM
from lsegeo.sensitivity.indices import as_indices, normalise_indices, str_coord

__all__ = ["CLUSTERS_FILE", "read_clusters", "aggregate_by_cluster", "cluster_of"]

#: the cluster table, relative to the lsegeo data directory
CLUSTERS_FILE = "ctsm_camels/flood_clusters_brunner2020.txt"


def cluster_of(clusters: pd.Series) -> pd.Series:
    """The same clusters indexed by 8-character gauge ids (leading zeros restored)."""
    cl = pd.Series(clusters)
    cl.index = [str(i).zfill(8) for i in cl.index]
    return cl


def read_clusters(data_dir: str | Path | None = None) -> pd.Series:
    """The flood-generation cluster of each CAMELS basin (Brunner et al. 2020).

    Reads ``ctsm_camels/flood_clusters_brunner2020.txt`` of the lsegeo data directory
    (:func:`lsegeo.io.camels.read_flood_cluster_table`).

    Parameters
    ----------
    data_dir : path-like, optional
        The data directory; found as :func:`lsegeo.locations.resolve_data_dir` does by default.

    Returns
    -------
    pandas.Series
        Cluster number (int) indexed by gauge id (8-character strings with leading zeros),
        named ``cluster``, index named ``basin``.

    Raises
    ------
    DataNotFoundError
        When the data directory or the file is absent (names the paths searched / the file).
    InputFormatError
        When the file is malformed (names the file and the line; see
        :func:`~lsegeo.io.camels.read_flood_cluster_table`).
    """
    from lsegeo.io.camels import read_flood_cluster_table
    from lsegeo.locations import resolve_data_dir

    root = resolve_data_dir(data_dir, expect=CLUSTERS_FILE.split("/")[0])
    return read_flood_cluster_table(root / CLUSTERS_FILE)


def aggregate_by_cluster(S: xr.Dataset | xr.DataArray, clusters: pd.Series, var: str = "S1") -> xr.Dataset:
    """Mean normalised first-order index per cluster of basins and parameter.

    Parameters
    ----------
    S : xarray.Dataset or xarray.DataArray
        Indices over ``basin`` and ``param`` (a Dataset's ``var``).
    clusters : pandas.Series
        Cluster of each gauge id (:func:`read_clusters`).
    var : str
        The variable of a Dataset to aggregate.

    Returns
    -------
    xarray.Dataset
        Over ``cluster`` and ``param``: ``S1_norm`` (mean over the cluster's basins of the indices
        normalised by :func:`~lsegeo.sensitivity.indices.normalise_indices`), ``S1_norm_std``,
        and ``n_basins(cluster)`` (basins
        with finite indices). Basins without a cluster are left out (with a warning).
    """
    s = str_coord(str_coord(normalise_indices(as_indices(S, var)), BASIN), PARAM).transpose(BASIN, PARAM)
    cl = cluster_of(clusters)
    basins = list(s["basin"].values)
    have = [b for b in basins if b in cl.index]
    if len(have) < len(basins):
        lost = [b for b in basins if b not in cl.index]
        warnings.warn(f"{len(lost)} basins have no cluster and are left out: {lost[:5]}", RuntimeWarning,
                      stacklevel=2)
    if not have:
        raise ValueError("no basin of the indices has a cluster")
    s = s.sel(basin=have)
    labels = cl.loc[have].to_numpy()
    ids = np.unique(labels)
    vals = s.values
    mean = np.full((ids.size, vals.shape[1]), np.nan)
    std = mean.copy()
    count = np.zeros(ids.size, dtype=np.int64)
    for k, c in enumerate(ids):
        rows = vals[labels == c]
        rows = rows[np.isfinite(rows).all(axis=1)]
        count[k] = rows.shape[0]
        if rows.shape[0]:
            mean[k], std[k] = rows.mean(axis=0), rows.std(axis=0)
    return xr.Dataset(
        {"S1_norm": (("cluster", "param"), mean, {"long_name": "mean normalised first-order index of the cluster"}),
         "S1_norm_std": (("cluster", "param"), std, {"long_name": "standard deviation over the cluster's basins"}),
         "n_basins": ("cluster", count, {"long_name": "basins with finite indices"})},
        coords={CLUSTER: ids, PARAM: s[PARAM].values},
        attrs={"lsegeo_aggregated": var},
    )
