"""The ensemble workflow (``lsegeo ensemble``, iteration 0 of a calibration).

It turns the ``ensemble`` and ``cluster`` sections of a validated :class:`~lsegeo.config.Config`
into a design (:func:`lsegeo.design.latin_hypercube`), an ensemble store
(:func:`lsegeo.ensembles.store.create_ensemble`) and a run of its pending members
(:func:`lsegeo.ensembles.runner.run_ensemble`), and reports the scores of the default and the
best member of every basin.

The store is the checkpoint: it records the sha256 of its job (``lsegeo_job_sha256``), built
from :func:`lsegeo.provenance.portable_config` so that the digest is the same wherever the work
directory lies; the same job resumes, another one is refused unless ``ensemble.overwrite``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo.config import Config
from lsegeo.design import latin_hypercube
from lsegeo.ensembles.runner import run_ensemble
from lsegeo.ensembles.store import create_ensemble, ensemble_progress
from lsegeo.errors import ConfigError
from lsegeo.io.stores import open_store, root_attrs
from lsegeo.io.urls import exists, location
from lsegeo.locations import work_dir
from lsegeo.models.protocol import is_external
from lsegeo.models.registry import get_model
from lsegeo.periods import Period
from lsegeo.plots.summary import plot_score_cdf
from lsegeo.provenance import portable_config, sha256_json

__all__ = ["EnsembleReport", "ensemble_paths", "ensemble_basins", "ensemble_job_spec", "ensemble_job",
           "ensemble_report", "format_ensemble_report", "format_external_design", "default_and_best_scores",
           "default_and_best"]

logger = logging.getLogger(__name__)


def ensemble_paths(cfg: Config) -> tuple[Path, Path]:
    """The basins store and the ensemble store of a configuration, defaults filled in.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        ``ensemble.basins_store`` (default ``<work dir>/camels_basins.zarr``) and
        ``ensemble.store`` (default ``<work dir>/ensemble_<model>.zarr``).
    """
    wd = cfg.work_dir or work_dir()
    ec = cfg.ensemble
    return (ec.basins_store or wd / "camels_basins.zarr", ec.store or wd / f"ensemble_{ec.model}.zarr")


def ensemble_basins(basins_store: Path, spec: str | list[str]) -> list[str]:
    """Resolve ``ensemble.basins``: ``'observed'``, ``'all'`` or a list of ids in the store.

    Raises
    ------
    ConfigError
        Some listed ids are not in the store's forcing, or ``'observed'`` selects no basin (the
        store has no basin with observed streamflow): an ensemble of no basin is refused.
    """
    observed = open_store(basins_store, "observed")
    ids = [str(b) for b in observed.basin.values]
    if spec == "all":
        return ids
    if spec == "observed":
        chosen = [b for b, h in zip(ids, observed["has_observations"].values, strict=True) if h]
        if not chosen:
            raise ConfigError(f"basins: 'observed' selects no basin: none of the {len(ids)} basins of "
                              f"{basins_store} has observed streamflow; use 'all' or list gauge ids")
        return chosen
    missing = [b for b in spec if b not in ids]
    if missing:
        raise ConfigError(f"ensemble.basins: {missing[:5]} are not in the forcing of {basins_store}")
    return sorted(spec)


def ensemble_job_spec(cfg: Config) -> dict[str, Any]:
    """What defines a configuration's ensemble: its section without ``store`` and ``overwrite``.

    Path-independent (:func:`lsegeo.provenance.portable_config`): the basins store is replaced by
    its content identity, so a store rebuilt from other inputs is another job, and the same job
    run from another checkout, work directory or machine has the same digest. An ensemble store
    is resumed only by a configuration whose spec has the digest it records.
    """
    job = cfg.ensemble.model_dump(mode="json", exclude={"overwrite", "store"})
    if not job.get("model_options"):  # no options: the digest of the jobs made before the key existed
        job.pop("model_options", None)
    job["basins_store"] = str(ensemble_paths(cfg)[0])
    return portable_config(job, base=cfg.work_dir or work_dir())


def ensemble_job(cfg: Config, *, client=None, progress: bool = True, call: str = "") -> tuple[Path, dict[str, Any]]:
    """Create (or resume) the ensemble store of ``cfg`` and run its pending members.

    A store that exists and was created from the same ``ensemble`` configuration is resumed:
    only its pending members run. One made from another configuration is an error unless
    ``ensemble.overwrite`` is set. The model is ``get_model(ensemble.model,
    **ensemble.model_options)``; for an external model (:func:`lsegeo.models.protocol.is_external`,
    e.g. CTSM) the store is created (or found) and nothing runs: its pending members are run by
    ``lsegeo launch`` (:func:`lsegeo.workflows.launch.launch_job`).

    Parameters
    ----------
    cfg : Config
        Sections ``ensemble`` and ``cluster`` and the key ``work_dir``.
    client : distributed.Client, optional
        Run on this client instead of starting the cluster of ``cfg.cluster``.
    progress : bool
        Show a progress bar on standard error.
    call : str
        The command line, for the store's ``history``.

    Returns
    -------
    (pathlib.Path, dict)
        The store and the runner's statistics (:func:`lsegeo.ensembles.runner.run_ensemble`)
        with ``resumed`` added; for an external model the store's counts
        (:func:`lsegeo.ensembles.store.ensemble_progress`: ``pending``, ``done``, ``failed``,
        ``total``) with ``resumed``, ``external`` (True), ``model`` and ``members``.

    Raises
    ------
    ConfigError
        ``ensemble.parameters`` names no parameter of the model, ``ensemble.basins`` ids absent
        from the basins store, or the store was made from another configuration.
    """
    ec = cfg.ensemble
    basins_store, store = ensemble_paths(cfg)
    model = get_model(ec.model, **ec.model_options)
    space = model.space
    fixed: list[str] = []
    if ec.parameters is not None:
        unknown = sorted(set(ec.parameters) - set(space.names))
        if unknown:
            raise ConfigError(f"ensemble.parameters: {unknown} are not parameters of {ec.model} "
                              f"({', '.join(space.names)})")
        fixed = [n for n in space.names if n not in ec.parameters]
    job = ensemble_job_spec(cfg)
    digest = sha256_json(job)
    resume = False
    if exists(store) and not ec.overwrite:
        if root_attrs(store).get("lsegeo_job_sha256") != digest:
            raise ConfigError(f"ensemble.store: {store} was made from another configuration; set "
                              "ensemble.overwrite: true (or --overwrite) to replace it, or choose another store")
        resume = True
        logger.info("resuming the ensemble store %s", store)
    if not resume:
        basins = ensemble_basins(location(basins_store), ec.basins)
        design = latin_hypercube(space, ec.n_members, ec.seed, fixed=fixed)
        periods = [Period(name, start, end) for name, (start, end) in ec.periods.items()]
        logger.info("ensemble: %d %s members x %d basins into %s", ec.n_members, ec.model, len(basins), store)
        create_ensemble(store, basins_store=basins_store, basins=basins, model=ec.model, space=space,
                        params=design, periods=periods, objectives=ec.objectives, warmup_days=ec.warmup_days,
                        iteration=0, keep_series=ec.keep_series, chunk_basins=ec.chunk_basins,
                        min_coverage=ec.min_coverage,
                        overwrite=ec.overwrite, config=job, job_sha256=digest, call=call,
                        extra_attrs={"lsegeo_model_options": dict(ec.model_options)} if ec.model_options else None)
    if is_external(model):
        stats = {**ensemble_progress(store), "resumed": resume, "external": True, "model": ec.model,
                 "members": int(open_store(store, "ensemble").sizes["member"])}
        logger.info("%s runs as external jobs: the store's pending members run with `lsegeo launch`", ec.model)
        return location(store), stats
    stats = run_ensemble(store, client=client, cluster=cfg.cluster.settings(), progress=progress, call=call)
    stats["resumed"] = resume
    return location(store), stats


def default_and_best_scores(store: Path, objective: str = "kgeprime") -> dict[str, dict[str, Any]]:
    """Per basin, the default member's score and the score of the best member, on each period.

    The best member is chosen on the calibration period; its score on every period is reported
    (so the test-period figure is an independent evaluation of the calibration choice).

    Returns
    -------
    dict
        period -> {"default": DataArray(basin), "best": DataArray(basin)}; NaN for basins with
        no scored member.
    """
    ens = open_store(store, "ensemble")
    sc = ens["scores"].sel(objective=objective).load()
    ok = ens["status"].load() == 1
    sense = str(ens["objective_sense"].sel(objective=objective).values)
    cal = sc.sel(period="calibration") if "calibration" in sc.period else sc.isel(period=0)
    cal = cal.where(ok)
    filled = cal.fillna(-np.inf if sense == "max" else np.inf)
    best = filled.argmax("member") if sense == "max" else filled.argmin("member")
    has = cal.notnull().any("member")
    out = {}
    for p in sc.period.values:
        s = sc.sel(period=p).where(ok)
        out[str(p)] = {"default": s.isel(member=0).where(has), "best": s.isel(member=best).where(has)}
    return out


def default_and_best(store: Path, objective: str = "kgeprime") -> dict[str, dict[str, float]]:
    """Medians over basins of :func:`default_and_best_scores`, with the number of basins."""
    return {p: {"default": float(v["default"].median()), "best": float(v["best"].median()),
                "n_basins": int(v["best"].notnull().sum())}
            for p, v in default_and_best_scores(store, objective).items()}


@dataclass(frozen=True)
class EnsembleReport:
    """The outcome of an ensemble run, for the terminal.

    Attributes
    ----------
    store : pathlib.Path
        The ensemble store.
    stats : dict
        The runner's statistics (:func:`ensemble_job`).
    scores : dict
        KGE' of the default and the best member per basin and period
        (:func:`default_and_best_scores`).
    figure : pathlib.Path or None
        The CDF figure, when one was asked for.
    """

    store: Path
    stats: dict[str, Any]
    scores: dict[str, dict[str, Any]]
    figure: Path | None = None


def ensemble_report(store: Path, stats: dict[str, Any], figure: str | Path | None = None) -> EnsembleReport:
    """Gather the KGE' of the default and best members of an ensemble; draw their CDFs if asked.

    Parameters
    ----------
    store : path-like
        The ensemble store.
    stats : dict
        The statistics returned by :func:`ensemble_job`.
    figure : path-like, optional
        Save a PNG here: CDFs across basins of KGE' of the default and the best member on each
        period (:func:`lsegeo.plots.summary.plot_score_cdf`).
    """
    scores = default_and_best_scores(store)
    path = None
    if figure:
        curves = {f"{kind} member, {period}": v[kind].values for period, v in scores.items()
                  for kind in ("default", "best")}
        path = plot_score_cdf(curves, figure, title="KGE' across basins, iteration 0")
    return EnsembleReport(location(store), stats, scores, path)


def format_external_design(store: Path, stats: dict[str, Any], config: str | Path = "CONFIG") -> str:
    """The lines ``lsegeo ensemble`` prints for an external model: the store, its pending members, what runs them.

    Parameters
    ----------
    store : pathlib.Path
        The ensemble store.
    stats : dict
        The statistics of :func:`ensemble_job` for an external model.
    config : path-like
        The configuration file, named in the ``lsegeo launch`` line.
    """
    basins = stats["total"] // max(stats["members"], 1)
    return "\n".join([
        f"ensemble store      {store}{' (resumed)' if stats['resumed'] else ''}",
        f"design              {stats['members']} {stats['model']} members x {basins} basins (the default member "
        "and a Latin hypercube)",
        f"pending             {stats['pending']} of {stats['total']} (done {stats['done']}, failed {stats['failed']}); "
        f"{stats['model']} runs as external jobs, nothing ran here",
        f"next                lsegeo launch {config}   (section `external`; runs the pending members)",
    ])


def format_ensemble_report(report: EnsembleReport) -> str:
    """Render an :class:`EnsembleReport` as lines of text for the terminal."""
    stats = report.stats
    lines = [
        f"ensemble store      {report.store}{' (resumed)' if stats['resumed'] else ''}",
        f"runs                {stats['ran']} done, {stats['failed']} failed in this launch; store: "
        f"{stats['done']} done, {stats['failed']} failed, {stats['pending']} pending of {stats['total']}",
        f"wall time           {stats['wall']:.1f} s ({stats['throughput']:.3g} basin-member-days/s)",
    ]
    for period, v in report.scores.items():
        lines.append(f"KGE' {period:12s}   median over {int(v['best'].notnull().sum())} basins: default member "
                     f"{float(v['default'].median()):.3f}, best member (chosen on calibration) "
                     f"{float(v['best'].median()):.3f}")
    if report.figure:
        lines.append(f"figure: {report.figure}")
    return "\n".join(lines)
