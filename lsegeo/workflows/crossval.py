"""The evaluation workflows: ``lsegeo crossval`` and ``lsegeo evaluate``.

* :func:`crossval_job`: the spatial cross-validation of every method and fold scheme, its table,
  CDF figures and the coverage of the score intervals per fold scheme and PUR region;
* :func:`evaluate_job`: a basin product run with the embedded model and scored against
  observed streamflow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lsegeo.config import Config
from lsegeo.errors import ConfigError, InputFormatError
from lsegeo.io.urls import write_text
from lsegeo.workflows.regionalize import basin_regions, regionalize_paths

__all__ = ["crossval_job", "evaluate_job"]


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, text)


def crossval_job(cfg: Config, *, client=None, progress: bool = True) -> tuple[Any, dict[str, Path]]:
    """Cross-validate every method of ``regionalize.crossval_methods`` over ``crossval_schemes``.

    Writes into ``regionalize.crossval_dir``: ``crossval_table.md`` and ``.csv``,
    ``crossval_scores.nc`` (per-basin scores), ``interval_coverage.json`` (score intervals on
    held-out folds, overall and per PUR region) and one CDF figure per scheme.

    Returns
    -------
    (CrossValidation, dict)
        The results and the files written.
    """
    from lsegeo.parallel import dask_client
    from lsegeo.plots.regionalize import plot_crossval_cdfs
    from lsegeo.regionalize.crossval import format_table, interval_coverage, spatial_crossvalidation

    rc = cfg.regionalize
    paths = regionalize_paths(cfg)
    if not paths["store"].exists():
        raise ConfigError(f"regionalize.store: {paths['store']} does not exist")
    out = paths["crossval"]
    with dask_client(cfg.cluster, client) as cl:
        cv = spatial_crossvalidation(paths["store"], paths["basins_store"], out, schemes=rc.crossval_schemes,
                                     methods=rc.crossval_methods, settings=rc.settings(), client=cl,
                                     progress=progress, data_dir=cfg.data_dir)
    files = {"table": _write_text(out / "crossval_table.md", format_table(cv.table) + "\n")}
    files["csv"] = _write_text(out / "crossval_table.csv", cv.table.to_csv(index=False))
    nc = out / "crossval_scores.nc"
    tmp = out / "crossval_scores.nc.partial"
    cv.scores.drop_vars("params").to_netcdf(tmp)
    os.replace(tmp, nc)
    files["scores"] = nc
    regions = basin_regions(paths["basins_store"])
    coverage = {}
    for scheme in cv.scores["scheme"].values:
        for method in cv.scores["method"].values:
            if not np.isfinite(cv.scores["predicted"].sel({"scheme": scheme, "method": method}).values).any():
                continue
            coverage[f"{scheme}/{method}"] = interval_coverage(
                cv.scores, str(scheme), str(method), confidence=rc.confidence, groups=regions,
                mondrian=rc.interval_groups == "pur")
    files["coverage"] = _write_text(out / "interval_coverage.json", json.dumps(coverage, indent=1, default=float))
    for i, p in enumerate(plot_crossval_cdfs(cv.scores["actual"], cv.scores["calibrated"], out / "figures")):
        files[f"figure_{i}"] = p
    return cv, files


def evaluate_job(cfg: Config, product: str | Path, observed: str | Path, *, out: str | Path | None = None,
                 client=None, progress: bool = True):
    """Run a basin product's parameters with the embedded model and score them against observations.

    Parameters
    ----------
    cfg : Config
        ``regionalize.basins_store`` (forcing, areas), ``ensemble.periods``, ``cluster``.
    product : path-like
        A basin product (zarr store or netCDF) of a model that runs here.
    observed : path-like
        A basins store or a CAMELS-layout streamflow table (cfs).
    out : path-like, optional
        The text report (default ``<product>.evaluation.txt`` beside it); the runs go to
        ``<work_dir>/evaluations/<product name>.zarr``.

    Returns
    -------
    (Evaluation, pathlib.Path)

    Raises
    ------
    InputFormatError
        The product is not a basin product, or lacks parameters of its model.
    """
    from lsegeo.models.registry import get_model
    from lsegeo.parallel import dask_client
    from lsegeo.periods import Period
    from lsegeo.products.metadata import product_response
    from lsegeo.regionalize.evaluate import evaluate_parameters, format_evaluation

    product = Path(product)
    ds = _open_product(product)
    if "basin" not in ds.dims:
        raise InputFormatError(str(product), None, f"not a basin product (it has dimensions {dict(ds.sizes)}); only "
                               "basins can be run and scored")
    model_name = str(ds.attrs.get("lsegeo_model", "hbv") or "hbv")
    space = get_model(model_name).space
    missing = [n for n in space.names if n not in ds]
    if missing:
        raise InputFormatError(str(product), None, f"lacks parameters {missing} of model {model_name}")
    response = product_response(ds, str(product))
    if response == "mean":  # output averaging: every sample is run, their mean flow is scored
        missing = [f"{n}_samples" for n in space.names if f"{n}_samples" not in ds]
        if missing:
            raise InputFormatError(str(product), None, f"says lsegeo_response = 'mean' but lacks {missing}")
        params = np.stack([ds[f"{n}_samples"].transpose("basin", "sample").values for n in space.names], axis=-1)
    else:
        params = np.column_stack([ds[n].values for n in space.names])
    basins = [str(b) for b in ds["basin"].values]
    paths = regionalize_paths(cfg)
    if not paths["basins_store"].exists():
        raise ConfigError(f"regionalize.basins_store: {paths['basins_store']} does not exist; give the basins store "
                          "with the forcing of the product's basins (--config with regionalize.basins_store)")
    ec = cfg.ensemble
    periods = [Period(n, a, b) for n, (a, b) in ec.periods.items()]
    runs = paths["work"] / "evaluations" / f"{product.name.removesuffix('.zarr').removesuffix('.nc')}.zarr"
    with dask_client(cfg.cluster, client) as cl:
        ev = evaluate_parameters(params, basins, observed, basins_store=paths["basins_store"], model=model_name,
                                 space=space, periods=periods, objective=cfg.regionalize.report_objective,
                                 warmup_days=ec.warmup_days, min_coverage=ec.min_coverage, runs=runs, client=cl,
                                 progress=progress, response=response)
    how = f", mean flow of {params.shape[1]} samples" if response == "mean" else ""
    text = (f"{product} ({ds.attrs.get('lsegeo_method', '?')}{how}, {len(basins)} basins) against {observed}\n"
            + format_evaluation(ev) + "\n")
    dest = Path(out) if out is not None else product.with_name(product.name + ".evaluation.txt")
    _write_text(dest, text)
    csv = dest.with_suffix(".csv")
    _write_text(csv, ev.scores.to_dataframe().reset_index().to_csv(index=False))
    return ev, dest


def _open_product(path: Path) -> xr.Dataset:
    """A product's maps, from its zarr store or netCDF file."""
    if not path.exists():
        raise InputFormatError(str(path), None, "no such product")
    if path.is_dir():
        from lsegeo.io.stores import open_store, store_groups

        groups = store_groups(path)
        if not groups:
            raise InputFormatError(str(path), None, "not an lsegeo product store (no group)")
        return open_store(path, groups[0]).load()
    with xr.open_dataset(path) as ds:
        return ds.load()
