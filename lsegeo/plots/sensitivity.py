"""Figures of parameter sensitivity: a map of one parameter's index, a heat map per cluster.

They draw indices already computed (:mod:`lsegeo.sensitivity`): ``S1`` or ``ST`` over basins on
a map of the gauges (:func:`plot_sensitivity_map`), and the mean normalised ``S1`` per cluster
of basins and parameter (:func:`plot_cluster_heatmap`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from lsegeo.conventions import BASIN, CLUSTER, PARAM
from lsegeo.plots.summary import save_figure

__all__ = ["basin_coords", "plot_sensitivity_map", "plot_cluster_heatmap"]


def _str_coord(da: xr.DataArray, dim: str) -> xr.DataArray:
    """The same array with its ``dim`` coordinate as Python strings (zarr stores give StringDType)."""
    return da.assign_coords({dim: np.array([str(v) for v in da[dim].values], dtype=object)})


def basin_coords(attrs_ds: xr.Dataset, basins: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of basins, from the basin attributes.

    Parameters
    ----------
    attrs_ds : xarray.Dataset
        The ``attributes`` group of a basins store (``lat``, ``lon`` over ``basin``, degrees).
    basins : list of str
        Gauge ids.

    Returns
    -------
    lon, lat : numpy.ndarray
        ``(n_basins,)`` each, degrees; NaN for a basin the attributes do not know.

    Raises
    ------
    ValueError
        The attributes have no ``lat`` or ``lon``.
    """
    for v in ("lat", "lon"):
        if v not in attrs_ds.variables:
            raise ValueError(f"the basin attributes have no {v!r} coordinate")
    known = {str(b): i for i, b in enumerate(attrs_ds["basin"].values)}
    lat_all = np.asarray(attrs_ds["lat"].values, dtype=float)
    lon_all = np.asarray(attrs_ds["lon"].values, dtype=float)
    pos = np.array([known.get(b, -1) for b in basins])
    lat = np.where(pos >= 0, lat_all[np.maximum(pos, 0)], np.nan)
    lon = np.where(pos >= 0, lon_all[np.maximum(pos, 0)], np.nan)
    return lon, lat


def plot_sensitivity_map(ds: xr.Dataset, attrs_ds: xr.Dataset, param: str, path: str | Path,
                         index: str = "S1") -> Path:
    """Map of one parameter's sensitivity index over the basins; saved as PNG.

    Parameters
    ----------
    ds : xarray.Dataset
        Indices over ``basin`` and ``param``
        (:func:`lsegeo.sensitivity.sobol.sobol_on_emulator`).
    attrs_ds : xarray.Dataset
        The ``attributes`` group of the basins store (coordinates ``lat``, ``lon`` over ``basin``).
    param : str
        The parameter.
    path : path-like
        Output PNG.
    index : str
        The variable drawn, ``"S1"`` or ``"ST"``.

    Returns
    -------
    pathlib.Path
        The figure.

    Raises
    ------
    ValueError
        ``ds`` has no ``index`` or no ``param``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if index not in ds:
        raise ValueError(f"the dataset has no index {index!r}; it has {', '.join(ds.data_vars)}")
    da = _str_coord(_str_coord(ds[index], PARAM), BASIN)
    if param not in list(da["param"].values):
        raise ValueError(f"parameter {param!r} is not in the dataset; it has {', '.join(da['param'].values)}")
    basins = list(da["basin"].values)
    v = da.sel(param=param).values.astype(float)
    lon, lat = basin_coords(attrs_ds, basins)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.all():
        warnings.warn(f"{(~ok).sum()} basins have no coordinates in the attributes and are not drawn",
                      RuntimeWarning, stacklevel=2)
    fin = ok & np.isfinite(v)
    vmax = max(float(np.nanpercentile(v[fin], 98)) if fin.any() else 1.0, 0.05)
    fig, ax = plt.subplots(figsize=(9, 5))
    sc = ax.scatter(lon[fin], lat[fin], c=np.clip(v[fin], 0, None), s=16, cmap="viridis", vmin=0, vmax=vmax,
                    edgecolors="none")
    nan = ok & ~np.isfinite(v)
    if nan.any():
        ax.scatter(lon[nan], lat[nan], marker="x", s=14, c="crimson", label=f"no index ({nan.sum()})")
        ax.legend(loc="lower left", fontsize=8)
    fig.colorbar(sc, ax=ax, label=f"{index} of {param}")
    src = ds.attrs.get("lsegeo_sensitivity_source", "")
    ax.set(title=f"{index} of {param} over {fin.sum()} basins{f' ({src})' if src else ''}; "
                 f"median {np.nanmedian(v[fin]) if fin.any() else float('nan'):.3f}",
           xlabel="longitude", ylabel="latitude")
    ax.set_aspect(1.2)
    return save_figure(fig, path)


def plot_cluster_heatmap(agg: xr.Dataset | xr.DataArray, path: str | Path, title: str | None = None) -> Path:
    """Heat map of the mean normalised first-order index per cluster and parameter; saved as PNG.

    Parameters
    ----------
    agg : xarray.Dataset or xarray.DataArray
        :func:`lsegeo.sensitivity.clusters.aggregate_by_cluster`'s result (its ``S1_norm``),
        over ``cluster`` and ``param``.
    path : path-like
        Output PNG.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    da = agg["S1_norm"] if isinstance(agg, xr.Dataset) else agg
    da = _str_coord(da, PARAM).transpose(CLUSTER, PARAM)
    vals = da.values.astype(float)
    params = list(da["param"].values)
    clusters = list(da["cluster"].values)
    counts = agg["n_basins"].values if isinstance(agg, xr.Dataset) and "n_basins" in agg else None
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(params) + 2.5), max(3.5, 0.38 * len(clusters) + 1.5)))
    top = float(np.nanmax(vals)) if np.isfinite(vals).any() else 1.0
    im = ax.imshow(vals, aspect="auto", cmap="magma_r", vmin=0, vmax=max(top, 0.05))
    ax.set_xticks(range(len(params)), params, rotation=60, ha="right")
    ylab = ([f"{c} (n={n})" for c, n in zip(clusters, counts, strict=True)] if counts is not None
            else [str(c) for c in clusters])
    ax.set_yticks(range(len(clusters)), ylab)
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            if np.isfinite(vals[i, j]):
                ax.text(j, i, f"{vals[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if vals[i, j] > 0.6 * np.nanmax(vals) else "black")
    fig.colorbar(im, ax=ax, label="mean normalised S1")
    ax.set(xlabel="parameter", ylabel="cluster", title=title or "mean normalised first-order index per cluster")
    return save_figure(fig, path)
