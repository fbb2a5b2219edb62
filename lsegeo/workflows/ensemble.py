"""Named compositions of pipeline steps, driven by a validated :class:`~lsegeo.config.Config`.

Each workflow only wires library functions together (paths, design, store, runner); the
command line calls these and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from lsegeo.config import Config
from lsegeo.design import latin_hypercube
from lsegeo.ensembles.store import create_ensemble, run_ensemble
from lsegeo.errors import ConfigError
from lsegeo.io.stores import open_store
from lsegeo.models.protocol import get_model
from lsegeo.periods import Period
from lsegeo.provenance import sha256_json
from lsegeo.locations import work_dir

__all__ = ["ensemble_paths", "ensemble_basins", "ensemble_job", "default_and_best_scores", "default_and_best"]


def ensemble_paths(cfg: Config) -> tuple[Path, Path]:
    """The basins store and the ensemble store of a configuration, defaults filled in."""
    wd = cfg.work_dir or work_dir()
    ec = cfg.ensemble
    return (ec.basins_store or wd / "camels_basins.zarr", ec.store or wd / f"ensemble_{ec.model}.zarr")


def ensemble_basins(basins_store: Path, spec: str | list[str]) -> list[str]:
    """Resolve ``ensemble.basins``: ``'observed'``, ``'all'`` or a list of ids in the store."""
    observed = open_store(basins_store, "observed")
    ids = [str(b) for b in observed.basin.values]
    if spec == "all":
        return ids
    if spec == "observed":
        return [b for b, h in zip(ids, observed["has_observations"].values) if h]
    missing = [b for b in spec if b not in ids]
    if missing:
        raise ConfigError(f"ensemble.basins: {missing[:5]} are not in the forcing of {basins_store}")
    return sorted(spec)


def ensemble_job(cfg: Config, *, client=None, progress: bool = True, call: str = "") -> tuple[Path, dict[str, Any]]:
    """Create (or resume) the ensemble store of ``cfg`` and run its pending members.

    A store that exists and was created from the same ``ensemble`` configuration is resumed:
    only its pending members run. One made from another configuration is an error unless
    ``ensemble.overwrite`` is set.

    Returns
    -------
    (pathlib.Path, dict)
        The store and the runner's statistics (:func:`lsegeo.ensembles.store.run_ensemble`).
    """
    ec = cfg.ensemble
    basins_store, store = ensemble_paths(cfg)
    model = get_model(ec.model)
    space = model.space
    fixed: list[str] = []
    if ec.parameters is not None:
        unknown = sorted(set(ec.parameters) - set(space.names))
        if unknown:
            raise ConfigError(f"ensemble.parameters: {unknown} are not parameters of {ec.model} "
                              f"({', '.join(space.names)})")
        fixed = [n for n in space.names if n not in ec.parameters]
    job = ec.model_dump(mode="json", exclude={"overwrite", "store"})
    job["basins_store"] = str(Path(basins_store).resolve())
    # the content of the basins store, not only its path: a store rebuilt from other inputs is another job
    job["basins_store_inputs_sha256"] = open_store(basins_store, "forcing").attrs.get("lsegeo_inputs_sha256", "")
    digest = sha256_json(job)
    resume = False
    if Path(store).exists() and not ec.overwrite:
        made_from = zarr.open_group(str(store), mode="r").attrs.get("lsegeo_job_sha256")
        if made_from != digest:
            raise ConfigError(f"ensemble.store: {store} was made from another configuration; set "
                              "ensemble.overwrite: true (or --overwrite) to replace it, or choose another store")
        resume = True
    if not resume:
        basins = ensemble_basins(Path(basins_store), ec.basins)
        design = latin_hypercube(space, ec.n_members, ec.seed, fixed=fixed)
        periods = [Period(name, start, end) for name, (start, end) in ec.periods.items()]
        create_ensemble(store, basins_store=basins_store, basins=basins, model=ec.model, space=space,
                        params=design, periods=periods, objectives=ec.objectives, warmup_days=ec.warmup_days,
                        iteration=0, keep_series=ec.keep_series, chunk_basins=ec.chunk_basins,
                        overwrite=ec.overwrite, config=job, job_sha256=digest, call=call)
    stats = run_ensemble(store, client=client, cluster=cfg.cluster, progress=progress, call=call)
    stats["resumed"] = resume
    return Path(store), stats


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
