"""The ``lsegeo calibrate`` workflow: a configuration's calibration loop, iteration 0 first if needed.

It only wires a validated :class:`~lsegeo.config.Config` to the library: the stores' paths
(:func:`calibration_paths`), the settings of the loop (:func:`calibration_settings`), the job
whose digest decides whether a store is resumed (:func:`calibration_job_spec`), the dask client,
the cluster table of the screening, and then :func:`lsegeo.calibration.loop.run_calibration`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsegeo.calibration.loop import run_calibration
from lsegeo.calibration.settings import CalibrationSettings
from lsegeo.calibration.store import CalibrationPaths, calibration_history
from lsegeo.config import Config
from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.io.urls import basename, exists, location
from lsegeo.locations import work_dir
from lsegeo.optimise.settings import ProposalSettings
from lsegeo.parallel import dask_client

__all__ = ["calibration_paths", "calibration_settings", "calibration_job_spec", "calibrate_job",
           "calibration_figure"]

logger = logging.getLogger(__name__)


def calibration_paths(cfg: Config) -> CalibrationPaths:
    """The stores of a configuration's calibration, defaults filled in.

    Iteration 0 is ``calibrate.ensemble_store`` (default the ``ensemble`` section's store), the
    calibration store ``calibrate.store`` (default ``<work_dir>/calibration_<emulator>.zarr``).
    Each may be a local path or a URL (:func:`lsegeo.io.urls.location`).
    """
    from lsegeo.workflows.ensemble import ensemble_paths

    wd = cfg.work_dir or work_dir()
    basins_store, ens_store = ensemble_paths(cfg)
    cc = cfg.calibrate
    return CalibrationPaths(iteration0=location(cc.ensemble_store or ens_store),
                            store=location(cc.store or wd / f"calibration_{cc.emulator}.zarr"),
                            basins_store=location(basins_store))


def calibration_settings(cfg: Config) -> CalibrationSettings:
    """The ``calibrate`` section as the settings of the loop, the emulator and the proposals.

    One target is optimised by the GA, two by NSGA-II.
    """
    cc = cfg.calibrate
    emulator = EmulatorSettings(kind=cc.emulator, backend=cc.backend,
                                backend_options=None if cc.backend_options is None else dict(cc.backend_options),
                                cv_folds=cc.cv_folds, seed=cc.seed)
    proposal = ProposalSettings(n_proposals=cc.proposals, pop_size=cc.pop_size, n_gen=cc.generations,
                                n_restarts=cc.restarts, algorithm="ga" if len(cc.objectives) == 1 else "nsga2",
                                min_distance=cc.min_distance, local_share=cc.local_share,
                                local_anchors=cc.local_anchors, local_candidates=cc.local_candidates,
                                local_radius=cc.local_radius, seed=cc.seed)
    return CalibrationSettings(objectives=tuple(cc.objectives), period=cc.period,
                               attributes=tuple(cc.attributes) if cc.attributes else None,
                               parameters=tuple(cc.parameters) if cc.parameters is not None else None,
                               screening_share=cc.screening_share, screening_by=cc.screening_by,
                               iterations=cc.iterations, emulator=emulator, proposal=proposal)


def calibration_job_spec(cfg: Config) -> dict[str, Any]:
    """What defines a configuration's calibration: every key but the cluster, the store's own and later steps'.

    A calibration store is resumed only by a configuration with the same digest of this
    (:func:`lsegeo.calibration.store.start_or_resume`). The ``regionalize`` section (a later
    step) is not part of it. ``calibrate.backend_options`` enters as the options the emulator is
    fitted with (the loop's defaults when the key is not given), so a store is never continued
    with another emulator; empty options are left out, so that stores made before the key
    existed resume.
    """
    spec = cfg.model_dump(mode="json", exclude={"cluster": True, "regionalize": True,
                                                "calibrate": {"overwrite", "store"}})
    effective = dict(calibration_settings(cfg).emulator.backend_options)
    if effective:
        spec["calibrate"]["backend_options"] = effective
    else:
        spec["calibrate"].pop("backend_options", None)
    return spec


def calibrate_job(cfg: Config, *, client=None, progress: bool = True, call: str = "") -> Path | str:
    """Run (or resume) the calibration of ``cfg``; return the calibration store.

    Iteration 0 is the ensemble store of the ``ensemble`` section (run first when absent). A
    calibration store that exists and was made from the same configuration is resumed. The
    stores (and the saved emulators beside the calibration store) may be at URLs
    (``docs/object_storage.md``).

    Parameters
    ----------
    cfg : Config
        The configuration (sections ``calibrate``, ``ensemble`` and ``cluster``).
    client : distributed.Client, optional
        Use this client; by default one is started on ``cfg.cluster`` and closed at the end.
    progress : bool
        Progress bars.
    call : str
        The command line, for the stores' ``history``.

    Returns
    -------
    pathlib.Path or str
        The calibration store (its URL when it is at one).

    Raises
    ------
    lsegeo.errors.ConfigError
        The store was made from another configuration (and ``calibrate.overwrite`` is false).
    lsegeo.errors.StoreError
        Iteration 0 has pending runs.
    lsegeo.errors.DataNotFoundError
        The screening by cluster needs the cluster table and it is absent.
    """
    from lsegeo.workflows.ensemble import ensemble_job

    cc = cfg.calibrate
    paths = calibration_paths(cfg)
    settings = calibration_settings(cfg)
    clusters = None
    if settings.screening_share is not None and settings.screening_by == "cluster":
        from lsegeo.sensitivity.clusters import read_clusters

        clusters = read_clusters(cfg.data_dir)
    with dask_client(cfg.cluster, client) as c:
        if not exists(paths.iteration0):
            logger.info("iteration 0: %s does not exist; running the ensemble first", paths.iteration0)
            ensemble_job(cfg, client=c, progress=progress, call=call)
        return run_calibration(paths, settings, client=c, job=calibration_job_spec(cfg), overwrite=cc.overwrite,
                               clusters=clusters, progress=progress, call=call)


def calibration_figure(store: Path | str, figure: Path) -> Path:
    """CDFs across basins of the best simulated KGE' after each iteration (calibration and test).

    ``store`` is a path or a URL; ``figure`` a local file.
    """
    from lsegeo.plots.calibration import plot_calibration

    return plot_calibration(calibration_history(location(store)), figure,
                            title=f"{basename(store)}: best score per iteration")
