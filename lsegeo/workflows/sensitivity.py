"""The ``lsegeo sensitivity`` workflow: Sobol' screening of a configuration's calibration emulator.

It wires a validated :class:`~lsegeo.config.Config` (sections ``sensitivity`` and
``calibrate``) to the library: it chooses the large-sample emulator of the calibration
(:func:`calibration_emulator`: the one saved for an iteration, or one fitted here on iteration
0 exactly as the calibration fits its first), computes the indices of every basin
(:func:`lsegeo.sensitivity.sobol.sobol_on_emulator`), writes the product
(:func:`lsegeo.sensitivity.store.write_sensitivity`), and optionally draws the figures
(:func:`sensitivity_figures`), checks the indices against the iteration-0 members
(:func:`lsegeo.sensitivity.ensemble.check_against_ensemble`) and selects the parameters per
cluster (:func:`lsegeo.sensitivity.selection.select_parameters`). Progress goes to the
``logging`` logger of this module.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.calibration.store import MARKER, saved_iterations
from lsegeo.config import Config
from lsegeo.errors import ConfigError, StoreError
from lsegeo.sensitivity import (
    aggregate_by_cluster,
    check_against_ensemble,
    format_agreement,
    format_selection,
    normalise_indices,
    read_clusters,
    select_parameters,
    sobol_on_emulator,
    write_sensitivity,
)
from lsegeo.sensitivity.clusters import cluster_of
from lsegeo.sensitivity.settings import SensitivitySettings
from lsegeo.sensitivity.store import GROUP
from lsegeo.workflows.calibrate import calibration_paths, calibration_settings

__all__ = ["LSEChoice", "SensitivityJob", "calibration_emulator", "sensitivity_settings", "sensitivity_figures",
           "sensitivity_job"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LSEChoice:
    """The large-sample emulator that a sensitivity job analyses, and where it came from.

    Attributes
    ----------
    emulator : LargeSampleEmulator
        The fitted emulator.
    iteration : int
        The calibration iteration whose emulator it is. An emulator fitted here on the
        iteration-0 ensemble counts as iteration 1 (the emulator of iteration ``k`` is fitted on
        the members of the iterations before ``k``).
    directory : pathlib.Path or None
        The saved emulator (``<calibration store>.emulators/iteration_<k>``); None when it was
        fitted here.
    description : str
        One line saying which emulator it is (logged, and stored with the indices).
    inputs : dict of str to str
        The inputs of the emulator (files to their sha256, stores to their id) for provenance.
    """

    emulator: Any
    iteration: int
    directory: Path | None
    description: str
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SensitivityJob:
    """What :func:`sensitivity_job` made.

    Attributes
    ----------
    store : pathlib.Path
        The sensitivity store (:func:`lsegeo.sensitivity.store.write_sensitivity`).
    indices : xarray.Dataset
        The indices written there (:func:`lsegeo.sensitivity.sobol.sobol_on_emulator`, with the
        job's attributes).
    emulator : LSEChoice
        The emulator analysed.
    figures : list of pathlib.Path
        Figures saved (empty without ``figures``).
    agreement : xarray.Dataset or None
        :func:`lsegeo.sensitivity.ensemble.check_against_ensemble`'s result, with ``check``.
    selection : dict or None
        ``{cluster: [parameters]}`` of :func:`lsegeo.sensitivity.selection.select_parameters`,
        with ``share``.
    """

    store: Path
    indices: xr.Dataset
    emulator: LSEChoice
    figures: list[Path] = field(default_factory=list)
    agreement: xr.Dataset | None = None
    selection: dict[int, list[str]] | None = None




def _store_id(path: Path) -> str:
    """The ``id`` (or job digest) of an lsegeo store, for provenance."""
    from lsegeo.io.stores import root_attrs

    attrs = root_attrs(path)
    return str(attrs.get("id") or attrs.get("lsegeo_job_sha256") or "unknown")


def calibration_emulator(cfg: Config, iteration: int | None = None) -> LSEChoice:
    """The large-sample emulator of a configuration's calibration.

    Parameters
    ----------
    cfg : lsegeo.config.Config
        The configuration; its ``calibrate`` section names the calibration store (default
        ``<work_dir>/calibration_lse.zarr``), the iteration-0 ensemble, the targets and the
        attributes (:func:`lsegeo.workflows.calibrate.calibration_paths`).
    iteration : int, optional
        Load the emulator saved for this calibration iteration
        (``<store>.emulators/iteration_<k>/`` with its ``COMPLETE`` marker). By default the
        latest completed one; when the calibration has saved none, a large-sample emulator is
        fitted here on the iteration-0 ensemble, exactly as ``lsegeo calibrate`` fits the
        emulator of iteration 1 (same backend, targets, period, attributes and seed
        ``calibrate.seed + 1``), and not saved.

    Returns
    -------
    LSEChoice

    Raises
    ------
    ConfigError
        When ``calibrate.emulator`` is ``sse``: Sobol' screening runs on the large-sample
        emulator only.
    StoreError
        When ``iteration`` has no completed emulator (the message lists those that have one),
        when a saved emulator is not an LSE, or when an emulator must be fitted and the
        iteration-0 ensemble or the basins store does not exist.
    """
    from lsegeo import emulators
    from lsegeo.calibration.loop import calibration_training_set, new_emulator
    from lsegeo.emulators.archive import read_meta
    from lsegeo.provenance import sha256_file

    cc = cfg.calibrate
    if cc.emulator != "lse":
        raise ConfigError(f"calibrate.emulator is {cc.emulator!r}: Sobol' screening evaluates the emulator at "
                          "n_base x (D + 2) parameter sets per basin for every basin at once, which is what the "
                          "large-sample emulator (one model over all basins) is for; single-site emulators are not "
                          "supported. Set calibrate.emulator: lse (and calibrate.store to an LSE calibration, or "
                          "leave it unset to fit an LSE on the iteration-0 ensemble)")
    paths = calibration_paths(cfg)
    saved = saved_iterations(paths)
    if iteration is not None:
        if iteration not in saved:
            have = (f"the completed iterations there are {', '.join(map(str, saved))}" if saved else
                    "it has none; leave out the iteration to fit an LSE on the iteration-0 ensemble "
                    f"{paths.iteration0}")
            raise StoreError(f"iteration {iteration}: {paths.emulator(iteration)} holds no completed emulator "
                             f"(expected a directory with a {MARKER} marker in {paths.emulators}); {have}")
        k = iteration
    elif saved:
        k = saved[-1]
    else:
        k = None
    if k is not None:
        directory = paths.emulator(k)
        meta = read_meta(directory)
        if meta.get("kind") != "lse":
            raise StoreError(f"{directory} holds a {meta.get('kind')!r} emulator; Sobol' screening needs a "
                             "large-sample emulator (kind 'lse')")
        em = emulators.load(directory)
        inputs = {str(f): sha256_file(f) for f in sorted(directory.iterdir()) if f.is_file()}
        desc = f"LSE of calibration iteration {k} ({directory}; {len(em.basins)} basins, {em.backend})"
        logger.info("emulator: %s", desc)
        return LSEChoice(em, k, directory, desc, inputs)

    for what, path in (("iteration-0 ensemble", paths.iteration0), ("basins store", paths.basins_store)):
        if not Path(path).exists():
            raise StoreError(f"the calibration store {paths.store} has no saved LSE (no {paths.emulators}/"
                             f"iteration_<k>/{MARKER}), so one must be fitted, but the {what} {path} does not "
                             "exist: run `lsegeo ensemble CONFIG` (or `lsegeo calibrate CONFIG`) first")
    logger.info("emulator: the calibration store %s has no saved LSE; fitting one on the iteration-0 "
                "ensemble %s (as calibration iteration 1 would, not saved)", paths.store, paths.iteration0)
    t0 = time.perf_counter()
    settings = calibration_settings(cfg)
    ts = calibration_training_set(settings, paths.iteration0, paths.basins_store)
    em = new_emulator(settings.emulator, 1).fit(ts)
    desc = (f"LSE fitted on the iteration-0 ensemble {paths.iteration0} ({len(ts.target)} rows, "
            f"{len(em.basins)} basins, {em.backend}, seed {settings.emulator.seed + 1})")
    logger.info("emulator: fitted on %d rows of %d basins in %.1f s", len(ts.target), len(em.basins),
                time.perf_counter() - t0)
    inputs = {str(paths.iteration0): _store_id(Path(paths.iteration0)),
              str(paths.basins_store): _store_id(Path(paths.basins_store))}
    return LSEChoice(em, 1, None, desc, inputs)


def sensitivity_settings(cfg: Config, **overrides: Any) -> SensitivitySettings:
    """The ``sensitivity`` section as :class:`~lsegeo.sensitivity.settings.SensitivitySettings`.

    Parameters
    ----------
    cfg : Config
        The configuration.
    **overrides
        Settings that replace the section's (command-line options); None values are ignored.

    Raises
    ------
    ValueError
        A setting is out of range (see :class:`~lsegeo.sensitivity.settings.SensitivitySettings`).
    """
    sc = cfg.sensitivity
    settings = SensitivitySettings(n_base=sc.n_base, num_resamples=sc.num_resamples, n_maps=sc.maps,
                                   check=sc.check, check_estimator=sc.check_estimator, share=sc.share)
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def sensitivity_figures(indices: xr.Dataset, attributes: xr.Dataset, directory: str | Path,
                        clusters: pd.Series | None = None, n_maps: int = SensitivitySettings.n_maps) -> list[Path]:
    """Figures of a sensitivity product: cluster heat map and maps of the most influential parameters.

    Parameters
    ----------
    indices : xarray.Dataset
        ``S1(basin, param)`` (:func:`lsegeo.sensitivity.sobol.sobol_on_emulator`).
    attributes : xarray.Dataset
        The ``attributes`` group of the basins store (the basins' ``lat`` and ``lon``).
    directory : path-like
        Where the PNGs go (created): ``sensitivity_clusters.png``
        (:func:`lsegeo.plots.sensitivity.plot_cluster_heatmap` of
        :func:`lsegeo.sensitivity.clusters.aggregate_by_cluster`, with ``clusters``) and
        ``sensitivity_S1_<param>.png`` (:func:`lsegeo.plots.sensitivity.plot_sensitivity_map`)
        for the ``n_maps`` parameters of largest mean normalised ``S1`` over the basins.
    clusters : pandas.Series, optional
        Cluster of each gauge id (:func:`lsegeo.sensitivity.clusters.read_clusters`); without it
        there is no heat map.
    n_maps : int
        Parameters mapped.

    Returns
    -------
    list of pathlib.Path
        The figures, heat map first.
    """
    from lsegeo.plots.sensitivity import plot_cluster_heatmap, plot_sensitivity_map

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    if clusters is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # basins without a cluster: counted by the caller
            agg = aggregate_by_cluster(indices, clusters)
        n = int(agg["n_basins"].sum())
        out.append(plot_cluster_heatmap(agg, directory / "sensitivity_clusters.png",
                                        title=f"mean normalised S1 per flood-generation cluster ({n} basins)"))
    mean = normalise_indices(indices).mean("basin", skipna=True)
    order = np.argsort(-np.nan_to_num(mean.values, nan=-1.0), kind="stable")[:max(0, int(n_maps))]
    params = [str(p) for p in indices["param"].values]
    for j in order:
        out.append(plot_sensitivity_map(indices, attributes, params[j], directory / f"sensitivity_S1_{params[j]}.png"))
    return out


def sensitivity_job(
    cfg: Config,
    *,
    iteration: int | None = None,
    out: str | Path | None = None,
    overwrite: bool | None = None,
    n_base: int | None = None,
    seed: int | None = None,
    target: str | None = None,
    figures: str | Path | None = None,
    n_maps: int | None = None,
    check: int | None = None,
    share: float | None = None,
    num_resamples: int | None = None,
    call: str = "",
) -> SensitivityJob:
    """Sobol' ``S1`` and ``ST`` of the calibration target to every parameter, per basin, on the LSE.

    What ``lsegeo sensitivity CONFIG`` runs: the emulator of :func:`calibration_emulator` is
    analysed by :func:`~lsegeo.sensitivity.sobol.sobol_on_emulator` for every basin it knows,
    the indices are written with :func:`~lsegeo.sensitivity.store.write_sensitivity`
    (provenance: the emulator's files and their sha256, the settings, the command), and
    optionally drawn, checked against the ensemble and turned into a selection of parameters per
    cluster. Every keyword left at None takes the value of the ``sensitivity`` section of
    ``cfg`` (whose defaults are :class:`~lsegeo.sensitivity.settings.SensitivitySettings`).

    Parameters
    ----------
    cfg : lsegeo.config.Config
        The configuration (sections ``sensitivity``, ``calibrate`` and ``ensemble``;
        ``work_dir``, ``data_dir``).
    iteration : int, optional
        Calibration iteration whose saved emulator is analysed; default the latest completed
        one, or an LSE fitted on iteration 0 when none is saved (:func:`calibration_emulator`).
    out : path-like, optional
        The sensitivity store; default ``<work_dir>/sensitivity_lse.zarr``.
    overwrite : bool, optional
        Replace an existing store (otherwise an existing one is an error, raised before any work).
    n_base : int, optional
        Base sample size of the Saltelli design, a power of 2: ``n_base x (D + 2)`` emulator
        evaluations per basin.
    seed : int, optional
        Seed of the sample, the bootstraps and the check; default ``calibrate.seed + k`` for the
        emulator of iteration ``k``, the seed of the calibration's own screening
        (``calibrate.screening_share``), so both give the same indices.
    target : str, optional
        Emulator target analysed; default the first of ``calibrate.objectives``.
    figures : path-like, optional
        Directory of the figures (:func:`sensitivity_figures`); none without it.
    n_maps : int, optional
        Parameters mapped with ``figures``.
    check : int, optional
        When positive, the number of basins checked against the iteration-0 ensemble
        (:func:`~lsegeo.sensitivity.ensemble.check_against_ensemble`, with the section's
        ``check_estimator``).
    share : float, optional
        When given (e.g. 0.85), the parameters carrying this share of the summed ``S1`` per
        cluster (:func:`~lsegeo.sensitivity.selection.select_parameters`) are logged and returned.
    num_resamples : int, optional
        Bootstrap resamples of the Sobol' confidence intervals.
    call : str
        The command line, for the ``history`` of the product.

    Returns
    -------
    SensitivityJob

    Raises
    ------
    ConfigError
        ``calibrate.emulator`` is ``sse``, or ``target`` is not a target of the emulator.
    StoreError
        The output store exists (without ``overwrite``), the iteration has no saved emulator,
        or a store that is needed is absent.
    DataNotFoundError
        ``figures`` or ``share`` need the cluster table and it is absent.
    ValueError
        ``n_base`` is not a power of 2, ``share`` not in (0, 1] or ``check`` negative.
    """
    from lsegeo.io.stores import open_store
    from lsegeo.locations import work_dir

    sc = cfg.sensitivity
    settings = sensitivity_settings(cfg, n_base=n_base, num_resamples=num_resamples, n_maps=n_maps, check=check,
                                    share=share)
    iteration = iteration if iteration is not None else sc.iteration
    figures = figures if figures is not None else sc.figures
    overwrite = bool(overwrite) or sc.overwrite
    out = Path(out or sc.store or Path(cfg.work_dir or work_dir()) / "sensitivity_lse.zarr")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it, or choose "
                         "another output (--out)")
    paths = calibration_paths(cfg)
    clusters = read_clusters(cfg.data_dir) if (figures is not None or settings.share is not None) else None
    if settings.check and not Path(paths.iteration0).exists():
        raise StoreError(f"the check needs the iteration-0 ensemble {paths.iteration0}, which does not exist")

    choice = calibration_emulator(cfg, iteration)
    em = choice.emulator
    target = target or sc.target or cfg.calibrate.objectives[0]
    if target not in em.target_names:
        raise ConfigError(f"target {target!r} is not a target of the emulator ({choice.directory or 'fitted here'}); "
                          f"it has {', '.join(em.target_names)}")
    seed = seed if seed is not None else sc.seed
    seed = cfg.calibrate.seed + choice.iteration if seed is None else int(seed)
    period = str(em.skill.get("period") or cfg.calibrate.period)
    names = list(em.param_names)
    nb, d = len(em.basins), len(names)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        ds = sobol_on_emulator(em, np.arange(nb), names, n_base=settings.n_base, target=target, seed=seed,
                               num_resamples=settings.num_resamples, conf_level=settings.conf_level,
                               max_rows=settings.max_rows)
    for w in caught:
        logger.warning("warning: %s", w.message)
    logger.info("Sobol' S1/ST of %s (%s period) for %d basins x %d parameters: %d emulator evaluations per basin, "
                "%d predict calls, %.1f s (seed %d)", target, period, nb, d, ds.attrs["lsegeo_n_evaluations"],
                ds.attrs["lsegeo_n_predict_calls"], time.perf_counter() - t0, seed)
    ds.attrs.update({
        "lsegeo_emulator": choice.description,
        "lsegeo_emulator_iteration": int(choice.iteration),
        "lsegeo_emulator_dir": str(choice.directory) if choice.directory else "",
        "lsegeo_emulator_backend": em.backend,
        "lsegeo_emulator_skill": json.dumps(em.skill, default=float, sort_keys=True),
        "lsegeo_calibration_store": str(paths.store),
        "lsegeo_period": period,
        "lsegeo_calibrate_config": json.dumps(cfg.calibrate.model_dump(mode="json"), sort_keys=True),
    })
    store = write_sensitivity(ds, out, overwrite=overwrite, call=call or "lsegeo.workflows.sensitivity.sensitivity_job",
                              inputs=choice.inputs,
                              title=f"lsegeo Sobol' sensitivity of {target} to {d} parameters over {nb} basins (LSE)")
    logger.info("sensitivity store   %s (group '%s': S1, ST, S1_conf, ST_conf, y_mean, y_std over basin x param)",
                store, GROUP)

    med = ds["S1"].median("basin", skipna=True)
    order = np.argsort(-np.nan_to_num(med.values, nan=-1.0), kind="stable")
    logger.info("median S1 over basins: %s%s", ", ".join(f"{names[j]} {float(med.values[j]):.3f}" for j in order[:6]),
                ", ..." if d > 6 else "")
    total = ds["S1"].sum("param", skipna=False)
    logger.info("median over basins of the sum of S1 %.2f (1 - sum S1: the share of the variance due to "
                "interactions); median ST of %s %.3f", float(total.median()), names[order[0]],
                float(np.nanmedian(ds["ST"].values[:, order[0]])))

    counts = None
    if clusters is not None:
        cl = cluster_of(clusters)
        basins = [str(b) for b in ds["basin"].values]
        lost = [b for b in basins if b not in cl.index]
        if lost:
            logger.info("%d basins have no flood-generation cluster (%s%s): left out of the cluster figures and "
                        "selected per basin", len(lost), ", ".join(lost[:5]), " ..." if len(lost) > 5 else "")
        have = [b for b in basins if b in cl.index]
        counts = {int(c): int(n) for c, n in cl.loc[have].value_counts().sort_index().items()}

    made: list[Path] = []
    if figures is not None:
        made = sensitivity_figures(ds, open_store(paths.basins_store, "attributes"), figures, clusters,
                                   n_maps=settings.n_maps)
        for f in made:
            logger.info("figure: %s", f)

    agreement = None
    if settings.check:
        t0 = time.perf_counter()
        agreement = check_against_ensemble(ds, paths.iteration0, settings.check, objective=target, period=period,
                                           seed=seed, top=settings.top, method=settings.check_estimator,
                                           num_resamples=settings.check_resamples)
        logger.info("check: S1 estimated directly from the %.0f iteration-0 members of %d basins (%s, no emulator) "
                    "in %.1f s", agreement.attrs["n_members"], agreement.sizes["basin"],
                    "RBD-FAST" if settings.check_estimator == "rbd_fast" else settings.check_estimator,
                    time.perf_counter() - t0)
        for line in format_agreement(agreement):
            logger.info("%s", line)

    selection = None
    if settings.share is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            selection = select_parameters(ds["S1"], settings.share, by="cluster", clusters=clusters,
                                          keyed_by="cluster")
            per_basin = select_parameters(ds["S1"], settings.share, by="cluster", clusters=clusters, keyed_by="basin")
        logger.info("parameters carrying %.0f%% of the summed S1, per cluster (Brunner et al. 2020):",
                    100 * settings.share)
        for line in format_selection(selection, names, counts):
            logger.info("%s", line)
        kept = np.mean([len(v) for v in per_basin.values()])
        logger.info("kept on average %.1f of %d parameters per basin", kept, d)
    return SensitivityJob(store, ds, choice, made, agreement, selection)
