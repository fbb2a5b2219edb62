"""The direct-calibration store: writing and opening the result of direct calibration.

:func:`lsegeo.calibration.direct.calibrate_direct` writes it with :func:`write_direct`.

The store (zarr v3) has one group, ``direct``: ``best_params(basin, param)``,
``best_score(basin, period)``, ``default_score(basin, period)``, ``history(basin, run)``,
``chain_score(basin, chain)``, ``runs(basin)``, ``wall_seconds(basin)``, ``note(basin)``,
``coverage(basin, period)`` (share of the period's days with an observation, units 1),
``score_note(basin, period)`` (why a period is not scored: its coverage is below
``lsegeo_min_coverage``), the checkpoints and the parameter space. It is written atomically
with provenance by :func:`lsegeo.io.stores.write_store`.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from lsegeo.errors import StoreError
from lsegeo.io.stores import open_store, store_groups, write_store

__all__ = ["GROUP", "write_direct", "open_direct"]

#: the group of a direct-calibration store
GROUP = "direct"


def write_direct(ds: xr.Dataset, path: Path, overwrite: bool, basins_store: Path) -> None:
    """Write the result as the ``direct`` group of a new store, with provenance.

    Parameters
    ----------
    ds : xarray.Dataset
        The result of :func:`lsegeo.calibration.direct.calibrate_direct`, its attributes those of
        :func:`lsegeo.provenance.product_attrs`.
    path : pathlib.Path
        The store to create.
    overwrite : bool
        Replace an existing store.
    basins_store : pathlib.Path
        The basins store the calibration read (recorded as the input).
    """
    nb, budget = ds.sizes["basin"], ds.sizes["run"]
    cb = max(1, min(nb, 64))
    n_ck = max(1, ds.sizes["checkpoint"])
    encoding = {"best_params": {"chunks": (cb, ds.sizes["param"])},
                "best_score": {"chunks": (cb, ds.sizes["period"])},
                "default_score": {"chunks": (cb, ds.sizes["period"])},
                "history": {"chunks": (cb, budget)}, "chain_score": {"chunks": (cb, ds.sizes["chain"])},
                "runs": {"chunks": (cb,)}, "wall_seconds": {"chunks": (cb,)}, "note": {"chunks": (cb,)},
                "checkpoint_params": {"chunks": (cb, n_ck, ds.sizes["param"])},
                "checkpoint_score": {"chunks": (cb, n_ck, ds.sizes["period"])}}
    encoding.update({v: {"chunks": (cb, ds.sizes["period"])} for v in ("coverage", "score_note") if v in ds})
    write_store(ds, path, group=GROUP, attrs=ds.attrs,
                inputs={str(basins_store): ds.attrs["lsegeo_inputs_sha256"]}, overwrite=overwrite,
                encoding=encoding)


def open_direct(path: str | Path) -> xr.Dataset:
    """Open a direct-calibration store (written by :func:`lsegeo.calibration.direct.calibrate_direct`) lazily.

    Parameters
    ----------
    path : path-like
        The store.

    Returns
    -------
    xarray.Dataset
        The ``direct`` group, dask-backed, with the store's provenance attributes.

    Raises
    ------
    StoreError
        ``path`` is not a zarr store, or not a direct-calibration store.
    """
    if GROUP not in store_groups(path):
        raise StoreError(f"{path} is not a direct-calibration store (it has no {GROUP!r} group)")
    return open_store(path, GROUP)
