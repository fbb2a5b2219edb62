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
from lsegeo.errors import InputFormatError
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

    Reads ``ctsm_camels/flood_clusters_brunner2020.txt`` of the lsegeo data directory: a header
    line, then ``gauge_id,cluster`` per line.

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
        When the file is malformed (names the file and the line).
    """
    from lsegeo.locations import require_file, resolve_data_dir

    root = resolve_data_dir(data_dir, expect=CLUSTERS_FILE.split("/")[0])
    path = require_file(root / CLUSTERS_FILE, "the flood-cluster table of Brunner et al. (2020)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputFormatError(str(path), None, f"not a UTF-8 text file ({e})") from None
    if not lines or not lines[0].strip():
        raise InputFormatError(str(path), 1, "empty file or empty header; expected a header "
                                             "'Camels_IDs,flood_cluster'")
    header = [h.strip() for h in lines[0].split(",")]
    if len(header) != 2 or any(h.lstrip("-").isdigit() for h in header):
        raise InputFormatError(str(path), 1, f"expected a header of two column names "
                                             f"('Camels_IDs,flood_cluster'), got {lines[0]!r}")
    ids: list[str] = []
    cl: list[int] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2:
            raise InputFormatError(str(path), n, f"expected 2 comma-separated fields (gauge id, cluster), "
                                                 f"got {len(fields)}: {line!r}")
        gid, c = fields
        if not gid.isdigit() or len(gid) > 8:
            raise InputFormatError(str(path), n, f"gauge id must be up to 8 digits, got {gid!r}")
        try:
            c_int = int(c)
        except ValueError:
            raise InputFormatError(str(path), n, f"cluster must be an integer, got {c!r}") from None
        gid = gid.zfill(8)
        if gid in seen:
            raise InputFormatError(str(path), n, f"gauge {gid} is listed twice (first on line {seen[gid]})")
        seen[gid] = n
        ids.append(gid)
        cl.append(c_int)
    if not ids:
        raise InputFormatError(str(path), None, "no data line after the header")
    return pd.Series(np.array(cl, dtype=np.int64), index=pd.Index(ids, name="basin", dtype=object), name="cluster")


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
