"""The direct-calibration workflow (``lsegeo direct``): every basin calibrated by DDS on the model.

It turns the ``direct`` and ``cluster`` sections of a validated :class:`~lsegeo.config.Config`
into the stores' paths (:func:`direct_paths`), the basins (:func:`direct_basins`), the settings
(:meth:`lsegeo.config.DirectConfig.settings`) and a call of
:func:`lsegeo.calibration.direct.calibrate_direct`, and reports the median best score on each
period next to that of the default parameter set (:func:`direct_report`,
:func:`format_direct_report`).

A direct store is not resumed: a run either writes the whole store or nothing (the store
appears at its path only when complete), and an existing store is replaced only with
``direct.overwrite`` (``--overwrite``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from lsegeo.calibration.direct import calibrate_direct
from lsegeo.config import Config
from lsegeo.errors import ConfigError
from lsegeo.locations import work_dir
from lsegeo.workflows.ensemble import ensemble_basins

__all__ = ["DirectReport", "direct_paths", "direct_basins", "direct_job", "direct_report", "format_direct_report"]

logger = logging.getLogger(__name__)


def direct_paths(cfg: Config) -> tuple[Path, Path]:
    """The basins store and the direct-calibration store of a configuration, defaults filled in.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        ``direct.basins_store`` (default ``<work dir>/camels_basins.zarr``) and ``direct.store``
        (default ``<work dir>/direct_<model>.zarr``).
    """
    wd = cfg.work_dir or work_dir()
    dc = cfg.direct
    return (Path(dc.basins_store or wd / "camels_basins.zarr"), Path(dc.store or wd / f"direct_{dc.model}.zarr"))


def direct_basins(basins_store: Path, spec: str | list[str]) -> list[str]:
    """Resolve ``direct.basins``: ``'observed'``, ``'all'`` or a list of ids in the store.

    A list keeps its order (repeated ids once).

    Raises
    ------
    ConfigError
        Some listed ids are not in the store's forcing.
    """
    if isinstance(spec, str):
        return ensemble_basins(basins_store, spec)
    known = set(ensemble_basins(basins_store, "all"))
    missing = [b for b in spec if b not in known]
    if missing:
        raise ConfigError(f"direct.basins: {missing[:5]} are not in the forcing of {basins_store}")
    return list(dict.fromkeys(spec))


def direct_job(cfg: Config, *, client=None, progress: bool = True, call: str = "") -> tuple[Path, xr.Dataset]:
    """Calibrate the basins of ``cfg`` by DDS on the model and write the direct-calibration store.

    Parameters
    ----------
    cfg : Config
        Sections ``direct`` and ``cluster`` and the key ``work_dir``.
    client : distributed.Client, optional
        Run on this client instead of starting the cluster of ``cfg.cluster``.
    progress : bool
        Show a progress bar (in basins) on standard error.
    call : str
        The command line, for the store's ``history``.

    Returns
    -------
    (pathlib.Path, xarray.Dataset)
        The store and its content (:func:`lsegeo.calibration.direct.calibrate_direct`).

    Raises
    ------
    ConfigError
        ``direct.basins`` lists ids absent from the basins store, or the store exists and
        ``direct.overwrite`` is false.
    lsegeo.errors.StoreError
        The basins store is missing or does not cover the simulation window.
    """
    dc = cfg.direct
    basins_store, store = direct_paths(cfg)
    settings = dc.settings()
    if store.exists() and not dc.overwrite:
        raise ConfigError(f"direct.store: {store} already exists; set direct.overwrite: true (or --overwrite) "
                          "to replace it, or choose another store")
    basins = direct_basins(basins_store, dc.basins)
    logger.info("direct: %s by DDS, %d runs per basin x %d basins into %s", settings.model, settings.budget,
                len(basins), store)
    ds = calibrate_direct(basins_store, basins, settings=settings, client=client, cluster=cfg.cluster.settings(),
                          store=store, overwrite=dc.overwrite, progress=progress, call=call)
    return store, ds


@dataclass(frozen=True)
class DirectReport:
    """The outcome of a direct calibration, for the terminal.

    Attributes
    ----------
    store : pathlib.Path
        The direct-calibration store.
    objective : str
        The objective optimised (the scores' name).
    budget : int
        Model runs per calibrated basin.
    n_basins : int
        Basins asked for.
    n_calibrated : int
        Basins calibrated (the others were skipped, with a note in the store).
    medians : dict
        period -> {"default": median, "best": median} over the calibrated basins.
    calibration_period : str
        The period the search scored.
    """

    store: Path
    objective: str
    budget: int
    n_basins: int
    n_calibrated: int
    medians: dict[str, dict[str, float]]
    calibration_period: str


def direct_report(store: Path, ds: xr.Dataset) -> DirectReport:
    """Median best and default-set scores per period of a direct calibration.

    Parameters
    ----------
    store : path-like
        The store written.
    ds : xarray.Dataset
        Its content, as returned by :func:`direct_job` (or :func:`lsegeo.calibration.direct.open_direct`).
    """
    ok = ds["runs"].values > 0
    medians = {}
    for p in ds.period.values:
        best = ds["best_score"].sel(period=p).values[ok]
        default = ds["default_score"].sel(period=p).values[ok]
        medians[str(p)] = {"default": float(np.nanmedian(default)) if ok.any() else float("nan"),
                           "best": float(np.nanmedian(best)) if ok.any() else float("nan")}
    return DirectReport(store=Path(store), objective=str(ds.attrs.get("lsegeo_objective", "score")),
                        budget=int(ds.sizes["run"]), n_basins=int(ds.sizes["basin"]), n_calibrated=int(ok.sum()),
                        medians=medians, calibration_period=str(ds.attrs.get("lsegeo_calibration_period", "")))


def format_direct_report(report: DirectReport) -> str:
    """Render a :class:`DirectReport` as lines of text for the terminal."""
    label = "KGE'" if report.objective == "kgeprime" else report.objective
    skipped = report.n_basins - report.n_calibrated
    lines = [f"direct store        {report.store}",
             f"basins              {report.n_calibrated} calibrated ({report.budget} model runs each)"
             + (f", {skipped} skipped (see the store's note)" if skipped else "")]
    for period, m in report.medians.items():
        chosen = " (calibrated on)" if period == report.calibration_period else ""
        lines.append(f"{label} {period:12s}   median over {report.n_calibrated} basins: default set "
                     f"{m['default']:.3f}, best set {m['best']:.3f}{chosen}")
    return "\n".join(lines)
