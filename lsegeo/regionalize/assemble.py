"""A regionalization as one Dataset in the products' layout (``docs/products.md``).

:func:`product_dataset` puts a :class:`~lsegeo.regionalize.methods.RegionalResult` of a domain
together with the score interval and the domain of applicability: on ``basin`` for basin and
table domains, on ``(lat, lon)`` for grids (NaN off land). The writers of
:mod:`lsegeo.products` add the CF/ACDD metadata and write it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["product_dataset"]


def product_dataset(result: Any, domain: Any, *, predicted: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                    applicability: np.ndarray, extrapolates: np.ndarray,
                    attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Assemble a regionalization of a domain into the products' layout.

    Parameters
    ----------
    result : RegionalResult
        ``params (n, K, n_params)`` of the domain's ``n`` targets, in the domain's order.
    domain : Domain
        ``kind`` ``"basins"``/``"table"`` (dimension ``basin``) or ``"grid"`` (``lat``, ``lon``).
    predicted, lower, upper : numpy.ndarray
        ``(n,)`` predicted report score of the point estimate and its interval.
    applicability : numpy.ndarray
        ``(n,)`` distance to the training basins in standardised attribute space.
    extrapolates : numpy.ndarray
        ``(n,)`` 1 where the target is outside the domain of applicability.
    attrs : mapping, optional
        Dataset attributes (``lsegeo_method``, ...).

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    ValueError
        The result's targets are not the domain's.
    """
    if list(result.targets) != [str(t) for t in domain.targets]:
        raise ValueError("the regionalization's targets are not the domain's targets, in the same order")
    n, k, _ = result.params.shape
    per_target: dict[str, tuple[np.ndarray, str]] = {}
    for j, name in enumerate(result.param_names):
        per_target[name] = (result.params[:, 0, j], "float")
        per_target[f"{name}_samples"] = (result.params[:, :, j], "sample")
    per_target.update(score_predicted=(predicted, "float"), score_lower=(lower, "float"),
                      score_upper=(upper, "float"), applicability=(applicability, "float"),
                      extrapolates=(np.asarray(extrapolates, dtype=np.int8), "int8"))
    if result.member is not None:
        per_target["selected_member"] = (np.asarray(result.member, dtype=np.int64), "int64")
    if result.donor is not None:
        per_target["donor_basin"] = (np.asarray(result.donor, dtype=object), "str")
    if getattr(result, "donors", None) is not None:
        per_target["donor_basin_samples"] = (np.asarray(result.donors, dtype=object), "str_sample")
    ds = xr.Dataset(coords={"sample": np.arange(k)})
    if domain.kind == "grid":
        ny, nx = domain.grid_shape
        ds = ds.assign_coords(lat=np.asarray(domain.grid_lat, dtype=np.float64),
                              lon=np.asarray(domain.grid_lon, dtype=np.float64))
        for name, (values, kind) in per_target.items():
            if kind == "sample":
                ds[name] = (("sample", "lat", "lon"), np.moveaxis(domain.to_grid(values), -1, 0))
            elif kind == "int8":
                ds[name] = (("lat", "lon"), domain.to_grid(values.astype(np.float64), fill=0).astype(np.int8))
            elif kind == "int64":
                ds[name] = (("lat", "lon"), domain.to_grid(values.astype(np.float64), fill=-1).astype(np.int64))
            elif kind == "str":
                grid = np.full(ny * nx, "", dtype=object)
                grid[domain.cell] = values
                ds[name] = (("lat", "lon"), grid.reshape(ny, nx))
            elif kind == "str_sample":
                grid = np.full((values.shape[1], ny * nx), "", dtype=object)
                grid[:, domain.cell] = values.T
                ds[name] = (("sample", "lat", "lon"), grid.reshape(-1, ny, nx))
            else:
                ds[name] = (("lat", "lon"), domain.to_grid(values))
        land = np.zeros(ny * nx, dtype=np.int8)
        land[domain.cell] = 1
        ds["land_mask"] = (("lat", "lon"), land.reshape(ny, nx))
        if domain.attribute_source is not None:
            src = np.zeros(ny * nx, dtype=np.int8)
            src[domain.cell] = domain.attribute_source
            ds["attribute_source"] = (("lat", "lon"), src.reshape(ny, nx))
    else:
        ds = ds.assign_coords(basin=np.array([str(t) for t in domain.targets], dtype=object),
                              lat=("basin", np.asarray(domain.lat, dtype=np.float64)),
                              lon=("basin", np.asarray(domain.lon, dtype=np.float64)))
        for name, (values, kind) in per_target.items():
            ds[name] = (("sample", "basin"), values.T) if kind in ("sample", "str_sample") else ("basin", values)
    ds.attrs.update({k: (v if isinstance(v, str | int | float) else json.dumps(v, default=str))
                     for k, v in (attrs or {}).items()})
    return ds
