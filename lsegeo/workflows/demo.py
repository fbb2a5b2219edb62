"""The demo workflow (``lsegeo demo``, ``make demo``): the main job end to end on the embedded defaults.

1. ingest the full CAMELS-US data set on a local dask cluster into
   ``<work dir>/camels_basins.zarr``, register it in ``<work dir>/catalog.yaml`` and open its
   forcing lazily through the catalog;
2. run iteration 0 of the calibration: the ensemble section's defaults (200 members of the
   embedded HBV model over every basin with observed streamflow, scored on the calibration and
   test periods) into ``<work dir>/ensemble_hbv.zarr``;
3. draw the figures in ``<work dir>/figures``.

Everything is written below the work directory: running the demo changes no file of the
repository. Earlier demo stores are replaced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lsegeo.config import validate_config
from lsegeo.io.catalog import open_catalog
from lsegeo.locations import work_dir as default_work_dir
from lsegeo.plots.summary import plot_basins_summary
from lsegeo.workflows.ensemble import EnsembleReport, ensemble_job, ensemble_report
from lsegeo.workflows.ingest import IngestResult, ingest_job

__all__ = ["DemoResult", "demo_job"]

logger = logging.getLogger(__name__)


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
    """

    ingest: IngestResult
    lazy_arrays: str
    basins_figure: Path
    ensemble: EnsembleReport


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
                           "ingest": {"overwrite": True}, "ensemble": {"overwrite": True}}, "lsegeo demo")
    ingested = ingest_job(cfg, progress=progress, call=call)
    forcing = open_catalog(ingested.catalog)[f"{ingested.store.stem}_forcing"].read()
    lazy = type(forcing["prcp"].data).__module__.split(".")[0]
    basins_figure = plot_basins_summary(ingested.store, wd / "figures" / "camels_basins_summary.png")
    ec = cfg.ensemble
    logger.info("iteration 0: %d %s members x every basin with observed streamflow", ec.n_members, ec.model.upper())
    store, stats = ensemble_job(cfg, progress=progress, call=call)
    report = ensemble_report(store, stats, wd / "figures" / "iteration0_kge_cdf.png")
    return DemoResult(ingested, lazy, basins_figure, report)
