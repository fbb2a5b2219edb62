"""The sensitivity product: a zarr v3 store of indices with provenance, and reading it back.

:func:`write_sensitivity` writes any Dataset of indices (over basins or clusters) as group
``sensitivity`` through :func:`lsegeo.io.stores.write_store`, with the CF/ACDD attributes and
PROV-JSON record of every lsegeo product; :func:`read_sensitivity` opens it lazily.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lsegeo.conventions import BASIN, CLUSTER, PARAM

__all__ = ["GROUP", "REFERENCES", "write_sensitivity", "read_sensitivity"]

#: zarr group of a sensitivity store
GROUP = "sensitivity"

#: the method's sources, recorded in every sensitivity product
REFERENCES = ("Tang, Wood & Swenson (2025) doi:10.1029/2024WR039525; "
              "Saltelli et al. (2010) doi:10.1016/j.cpc.2009.09.018; "
              "Tissot & Prieur (2012) doi:10.1016/j.ress.2012.06.010; "
              "Herman & Usher (2017) SALib doi:10.21105/joss.00097; "
              "Brunner et al. (2020) doi:10.1029/2020GL088000")


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in np.asarray(v, dtype=object).tolist()]
    return json.dumps(v, default=str) if isinstance(v, dict) else str(v)


def _jsonable_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Strings as object arrays, attributes as JSON values."""
    out = ds.copy()
    for name in list(out.variables):
        var = out[name]
        if var.dtype.kind in ("U", "T", "O") or str(var.dtype).startswith("StringDType"):
            vals = np.array([str(x) for x in np.asarray(var.values).ravel()], dtype=object).reshape(var.shape)
            if name in out.coords:
                out = out.assign_coords({name: (var.dims, vals, var.attrs)})
            else:
                out[name] = (var.dims, vals, var.attrs)
    out.attrs = {k: _jsonable(v) for k, v in out.attrs.items()}
    for name in out.variables:
        out[name].attrs = {k: _jsonable(v) for k, v in out[name].attrs.items()}
        out[name].encoding = {}
    return out


def write_sensitivity(
    ds: xr.Dataset,
    path: str | Path,
    *,
    overwrite: bool = False,
    call: str | None = None,
    config: dict | None = None,
    inputs: dict[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """Write a sensitivity Dataset to a zarr v3 store, atomically, with provenance.

    Parameters
    ----------
    ds : xarray.Dataset
        Indices, e.g. from :func:`~lsegeo.sensitivity.sobol.sobol_on_emulator`,
        :func:`~lsegeo.sensitivity.ensemble.sensitivity_from_ensemble` or
        :func:`~lsegeo.sensitivity.clusters.aggregate_by_cluster` (written to group ``sensitivity``).
    path : path-like
        The store; built beside it and renamed into place (:func:`lsegeo.io.stores.atomic_store`).
    overwrite : bool
        Replace an existing store.
    call : str, optional
        The call or command that made the indices (first ``history`` line).
    config : dict, optional
        Settings of the analysis, stored with their sha256; by default the Dataset's ``lsegeo_``
        attributes.
    inputs : dict of str to str, optional
        Inputs (e.g. the emulator's directory, the ensemble store) to their sha256 or id.
    title : str, optional
        ACDD title.

    Returns
    -------
    pathlib.Path
        The store.

    Raises
    ------
    lsegeo.errors.StoreError
        The store exists and ``overwrite`` is false.
    """
    from lsegeo import provenance
    from lsegeo.io.stores import write_store

    out = _jsonable_dataset(ds)
    settings = {k: v for k, v in out.attrs.items() if k.startswith("lsegeo_")}
    n_b = out.sizes.get(BASIN, out.sizes.get(CLUSTER, 0))
    attrs = provenance.product_attrs(
        title=title or f"lsegeo parameter sensitivity over {n_b} {'basins' if BASIN in out.dims else 'clusters'}",
        summary=(f"Global sensitivity indices ({', '.join(v for v in out.data_vars)}) of the score to "
                 f"{out.sizes.get(PARAM, 0)} parameters "
                 f"({settings.get('lsegeo_sensitivity_method', 'unknown method')})."),
        step="sensitivity", call=call or "lsegeo.sensitivity.store.write_sensitivity",
        config=config if config is not None else settings, inputs=inputs, references=REFERENCES,
        extra={"lsegeo_store_kind": "sensitivity", **settings},
    )
    write_store(out, path, group=GROUP, attrs=attrs, inputs=dict(inputs or {}), overwrite=overwrite)
    return Path(path)


def read_sensitivity(path: str | Path) -> xr.Dataset:
    """Open a store written by :func:`write_sensitivity`.

    Parameters
    ----------
    path : path-like
        The store.

    Returns
    -------
    xarray.Dataset
        Its ``sensitivity`` group, lazily (dask-backed), with the provenance attributes.
    """
    from lsegeo.io.stores import open_store

    return open_store(path, GROUP)
