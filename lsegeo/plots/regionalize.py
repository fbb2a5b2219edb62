"""Figures of regionalization: parameter and score maps of a product, CDFs of the cross-validation."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from lsegeo.plots.summary import plot_score_cdf_panels, save_figure

__all__ = ["plot_product_maps", "plot_crossval_cdfs"]


def _map(ax, ds: xr.Dataset, name: str, cmap: str = "viridis") -> None:
    var = ds[name]
    lon, lat = ds["lon"].values, ds["lat"].values
    ax.set(xlim=(np.nanmin(lon) - 1, np.nanmax(lon) + 1), ylim=(np.nanmin(lat) - 1, np.nanmax(lat) + 1))
    if not np.isfinite(var.values).any():
        ax.text(0.5, 0.5, f"no {name.replace('_', ' ')}", transform=ax.transAxes, ha="center", va="center")
        ax.set_title(textwrap.fill(var.attrs.get("long_name", name), 48), fontsize=9)
        ax.set(xlabel="longitude [°E]", ylabel="latitude [°N]")
        return
    values = var.values.astype(np.float64)
    lo, hi = np.nanpercentile(values, [2, 98])  # robust colour limits: a few extreme cells do not wash out the map
    if "lat" in var.dims and "lon" in var.dims:
        m = ax.pcolormesh(lon, lat, values, shading="nearest", cmap=cmap, vmin=lo, vmax=hi)
    else:
        m = ax.scatter(lon, lat, c=values, s=9, cmap=cmap, vmin=lo, vmax=hi)
    units = var.attrs.get("units", "")
    ax.figure.colorbar(m, ax=ax, shrink=0.8, extend="both",
                       label=f"{name} [{units}]" if units and units != "1" else name)
    ax.set_title(textwrap.fill(var.attrs.get("long_name", name), 48), fontsize=9)
    ax.set(xlabel="longitude [°E]", ylabel="latitude [°N]")
    ax.set_aspect(1.25)


def plot_product_maps(ds: xr.Dataset, folder: str | Path, stem: str, param_names: Sequence[str]) -> list[Path]:
    """Maps of every parameter (one figure) and of the predicted score and interval width (another).

    Parameters
    ----------
    ds : xarray.Dataset
        A product in the layout of :mod:`lsegeo.regionalize.assemble` (on ``lat``/``lon`` or
        ``basin`` with ``lat``/``lon`` coordinates).
    folder : path-like
        Where the PNGs go (created).
    stem : str
        File name stem: ``<stem>_parameters.png`` and ``<stem>_score.png``.
    param_names : sequence of str
        The parameter variables to map.

    Returns
    -------
    list of pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    n = len(param_names)
    cols = min(4, max(1, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), param_names, strict=False):
        _map(ax, ds, name)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{ds.attrs.get('lsegeo_method', '')} parameters: {ds.attrs.get('lsegeo_domain_name', stem)}")
    out = [save_figure(fig, folder / f"{stem}_parameters.png")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), squeeze=False)
    width = (ds["score_upper"] - ds["score_lower"]).rename("interval_width")
    width.attrs["long_name"] = "width of the score interval"
    shown = ds.assign(interval_width=width)
    for ax, (name, cmap) in zip(axes[0], [("score_predicted", "RdYlBu"), ("interval_width", "magma_r"),
                                          ("applicability", "cividis")], strict=True):
        _map(ax, shown, name, cmap=cmap)
    out.append(save_figure(fig, folder / f"{stem}_score.png"))
    return out


def plot_crossval_cdfs(actual: xr.DataArray, calibrated: xr.DataArray, folder: str | Path, *,
                       label: str = "KGE'") -> list[Path]:
    """CDFs of the held-out score per method: one figure per fold scheme, one panel per period.

    Parameters
    ----------
    actual : xarray.DataArray
        ``(scheme, method, basin, period)`` score of each method's set in its held-out basin.
    calibrated : xarray.DataArray
        ``(basin, period)`` the basins' own calibration (drawn as the upper reference).
    folder : path-like
        Where ``crossval_<scheme>_cdf.png`` go.
    label : str
        The score's name.

    Returns
    -------
    list of pathlib.Path
    """
    out = []
    for scheme in actual["scheme"].values:
        panels = {}
        for period in actual["period"].values:
            curves = {str(m): actual.sel({"scheme": scheme, "method": m, "period": period}).values
                      for m in actual["method"].values}
            curves["calibrated"] = calibrated.sel(period=period).values
            panels[f"{period} period"] = curves
        out.append(plot_score_cdf_panels(panels, Path(folder) / f"crossval_{scheme}_cdf.png",
                                         xlabel=f"{label} in held-out basins",
                                         title=f"Regionalization, {scheme} folds: score in held-out basins",
                                         xlim=(-0.5, 1.0)))
    return out
