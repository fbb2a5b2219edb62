"""The demo workflow (``lsegeo demo``, ``make demo``): the main job end to end on the embedded defaults.

1. ingest the full CAMELS-US data set on a local dask cluster into
   ``<work dir>/camels_basins.zarr``, register it in ``<work dir>/catalog.yaml`` and open its
   forcing lazily through the catalog;
2. run iteration 0 of the calibration: the ensemble section's defaults (200 members of the
   embedded HBV model over every basin with observed streamflow, scored on the calibration and
   test periods) into ``<work dir>/ensemble_hbv.zarr``;
3. calibrate every basin with one short iteration of the LSE loop (:data:`DEMO_CALIBRATION`:
   the emulator fitted on iteration 0, 20 proposals per basin run and appended) into
   ``<work dir>/calibration_lse.zarr``;
4. regionalize (:data:`DEMO_REGIONALIZATION`: ``lse-optimise``, a score interval calibrated on a
   5-fold spatial cross-validation with real runs) to every basin without observed streamflow
   and to the 0.125-degree NLDAS grid over CONUS, and write the products (zarr, netCDF, PROV-JSON,
   catalog entries, maps) into ``<work dir>/products``;
5. draw the figures in ``<work dir>/figures`` and ``<work dir>/products/figures``.

Every step runs on one local dask cluster. Everything is written below the work directory:
running the demo changes no file of the repository. Earlier demo stores are replaced.
The demo's emulator and search are smaller than the defaults so that the whole job takes
about ten minutes on 2 cores; ``deploy/`` has the full-size configurations.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsegeo.calibration.store import calibration_history
from lsegeo.config import validate_config
from lsegeo.io.catalog import open_catalog
from lsegeo.locations import work_dir as default_work_dir
from lsegeo.parallel import dask_client
from lsegeo.plots.summary import plot_basins_summary
from lsegeo.workflows.calibrate import calibrate_job, calibration_figure
from lsegeo.workflows.ensemble import EnsembleReport, ensemble_job, ensemble_report
from lsegeo.workflows.ingest import IngestResult, ingest_job
from lsegeo.workflows.regionalize import RegionalizeReport, regionalize_job

__all__ = ["DemoResult", "demo_job", "DEMO_CALIBRATION", "DEMO_REGIONALIZATION"]

logger = logging.getLogger(__name__)

#: the demo's short calibration: one iteration of the loop's defaults with 20 proposals per basin
DEMO_CALIBRATION = {"overwrite": True, "iterations": 1, "proposals": 20}

#: the demo's regionalization: the basins without streamflow and the CONUS 0.125-degree grid
DEMO_REGIONALIZATION = {
    "overwrite": True, "method": "lse-optimise", "backend_options": {"n_estimators": 200}, "interval_scheme": "study",
    "optimise": {"pop_size": 40, "generations": 30, "restarts": 2, "max_rows": 2000},
    "domains": [{"name": "camels_unobserved", "kind": "basins", "basins": "unobserved"},
                {"name": "conus_0125", "kind": "grid", "resolution": 0.125}],
}


@dataclass(frozen=True)
class DemoResult:
    """What the demo made.

    Attributes
    ----------
    ingest : IngestResult
        The basins store, its key figures and its catalog entries.
    lazy_arrays : str
        The array library behind the forcing read back through the catalog (``"dask"``: lazy).
    basins_figure : pathlib.Path
        Map and CDF of the gauges of the basins store.
    ensemble : EnsembleReport
        Iteration 0: the ensemble store, its run statistics, scores and CDF figure.
    calibration : pathlib.Path
        The calibration store.
    calibrated : dict
        Median best KGE' over the basins per period: ``{"iteration 0": {...}, "iteration 1": {...}}``.
    regionalization : RegionalizeReport
        The products and their figures.
    seconds : dict
        Wall time of each step.
    """

    ingest: IngestResult
    lazy_arrays: str
    basins_figure: Path
    ensemble: EnsembleReport
    calibration: Path
    calibrated: dict
    regionalization: RegionalizeReport
    seconds: dict


def demo_job(*, data_dir: str | Path | None = None, work_dir: str | Path | None = None,
             workers: int | None = None, progress: bool = True, call: str = "") -> DemoResult:
    """Run the main job end to end (see the module docstring).

    Parameters
    ----------
    data_dir : path-like, optional
        Directory holding ``camels_us`` (default: see :mod:`lsegeo.locations`).
    work_dir : path-like, optional
        Output directory (default ``LSEGEO_WORK_DIR`` or ``./work``).
    workers : int, optional
        Local worker processes (default: the number of cores, at most 4).
    progress : bool
        Show progress bars on standard error.
    call : str
        The command line, for the stores' ``history``.

    Returns
    -------
    DemoResult
    """
    wd = Path(work_dir) if work_dir is not None else default_work_dir()
    cfg = validate_config({"data_dir": str(data_dir) if data_dir is not None else None, "work_dir": str(wd),
                           "cluster": {"n_workers": workers},
                           "ingest": {"overwrite": True}, "ensemble": {"overwrite": True},
                           "calibrate": DEMO_CALIBRATION, "regionalize": DEMO_REGIONALIZATION}, "lsegeo demo")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    with dask_client(cfg.cluster) as client:
        ingested = ingest_job(cfg, progress=progress, call=call, client=client)
        forcing = open_catalog(ingested.catalog)[f"{ingested.store.stem}_forcing"].read()
        lazy = type(forcing["prcp"].data).__module__.split(".")[0]
        basins_figure = plot_basins_summary(ingested.store, wd / "figures" / "camels_basins_summary.png")
        seconds["ingest"], t = time.perf_counter() - t, time.perf_counter()
        ec = cfg.ensemble
        logger.info("iteration 0: %d %s members x every basin with observed streamflow", ec.n_members,
                    ec.model.upper())
        store, stats = ensemble_job(cfg, progress=progress, call=call, client=client)
        report = ensemble_report(store, stats, wd / "figures" / "iteration0_kge_cdf.png")
        seconds["iteration 0"], t = time.perf_counter() - t, time.perf_counter()
        logger.info("calibration: %d LSE iteration(s), %d proposals per basin", cfg.calibrate.iterations,
                    cfg.calibrate.proposals)
        calibration = calibrate_job(cfg, client=client, progress=progress, call=call)
        calibration_figure(calibration, wd / "figures" / "calibration_kge_cdf.png")
        history = calibration_history(calibration, objective="kgeprime", target="nkgeprime")
        calibrated = {f"iteration {int(i)}": {str(p): float(np.nanmedian(history["best_score"].sel(iteration=i,
                                                                                                   period=p)))
                                              for p in history["period"].values}
                      for i in history["iteration"].values}
        seconds["calibration"], t = time.perf_counter() - t, time.perf_counter()
        regionalization = regionalize_job(cfg, client=client, progress=progress, call=call)
        seconds["regionalization"] = time.perf_counter() - t
    return DemoResult(ingested, lazy, basins_figure, report, calibration, calibrated, regionalization, seconds)
