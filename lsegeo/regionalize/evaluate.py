"""Score a basin product against observed streamflow by running the embedded model with it.

:func:`evaluate_parameters` runs the model with each basin's point estimate and with the default
set (the baseline of every figure) through an ensemble store (:mod:`lsegeo.ensembles`: dask,
resumable, atomic) that keeps the simulated series, and scores them against observations given
either as a basins store (its ``observed`` group) or as a table in the CAMELS layout (a ``date``
column and one column per 8-digit gauge id, in ft3 s-1, ``-999`` and empty cells missing),
converted to mm day-1 with the basin area of the basins store (``area_gages2``, as ingest does).
The figures are those of the cross-validation: median with a bootstrap 95% interval,
quartiles, and the share of basins better than with the default set.

A product predicts with its point estimate (sample 0), or, when it says
``lsegeo_response = "mean"`` (``donor-ensemble``), with the mean of the simulated flows of all its
samples (output averaging); :func:`score_responses` scores either kind from the runs' series and is
shared with the cross-validation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.errors import InputFormatError

__all__ = ["Evaluation", "read_observed", "reusable_runs", "score_responses", "evaluate_parameters",
           "format_evaluation"]

logger = logging.getLogger(__name__)

def read_observed(source: str | Path, basins: Sequence[str], time: pd.DatetimeIndex,
                  basins_store: str | Path) -> np.ndarray:
    """Observed daily streamflow of basins on given days, mm day-1.

    Parameters
    ----------
    source : path-like
        A basins store (a folder with an ``observed`` group) or a CAMELS-layout table (cfs).
    basins : sequence of str
        Gauge ids.
    time : pandas.DatetimeIndex
        The days.
    basins_store : path-like
        The basins store whose ``area`` (``area_gages2``, km2) converts a table's cfs.

    Returns
    -------
    numpy.ndarray
        ``(n_basins, n_days)``; NaN where there is no observation (a gauge absent from the
        source has no observation at all).

    Raises
    ------
    DataNotFoundError
        The source does not exist.
    InputFormatError
        The table is malformed (the reader names the file and line), or has no gauge of
        ``basins``.
    """
    from lsegeo.io.stores import open_store

    source = Path(source)
    if source.is_dir():
        obs = open_store(source, "observed")["qobs"]
        have = [str(b) for b in obs["basin"].values]
        out = np.full((len(basins), len(time)), np.nan)
        rows = [i for i, b in enumerate(basins) if b in have]
        if rows:
            sub = obs.sel(basin=[basins[i] for i in rows]).reindex(time=time).values
            out[rows] = sub
        return out
    from lsegeo.ingest.camels import CFS_TO_M3S
    from lsegeo.io.camels import read_streamflow_table

    table = read_streamflow_table(source)
    present = [b for b in basins if b in table.columns]
    if not present:
        raise InputFormatError(str(source), None, f"none of the {len(basins)} basins of the product is a column of the "
                               "table")
    area = open_store(basins_store, "attributes")["area"].load()
    area_km2 = area.sel(basin=present).values.astype(np.float64)
    cfs = table[present].reindex(time).to_numpy(dtype=np.float64)
    mm = cfs * CFS_TO_M3S * 86400.0 / (area_km2[None, :] * 1e6) * 1000.0
    out = np.full((len(basins), len(time)), np.nan)
    pos = {b: i for i, b in enumerate(basins)}
    out[[pos[b] for b in present]] = mm.T
    return out


@dataclass
class Evaluation:
    """Scores of a product's basins.

    Attributes
    ----------
    scores : xarray.Dataset
        ``product(basin, period)`` and ``default(basin, period)``: the report objective of the
        product's set and of the default set; NaN where a period has too few observations.
    table : pandas.DataFrame
        Per period: ``n``, ``median``, ``median_lo``, ``median_hi``, ``q25``, ``q75``,
        ``better_than_default``, ``default_median``.
    """

    scores: xr.Dataset
    table: pd.DataFrame


def reusable_runs(path: str | Path, basins: Sequence[str], params: np.ndarray, periods: Sequence[Any],
                  warmup_days: int, min_coverage: float, series: bool = True) -> bool:
    """Whether an existing runs store holds these runs (with kept series if ``series``), so that it can be resumed.

    Parameters
    ----------
    path : path-like
        The ensemble store (it may not exist).
    basins : sequence of str
    params : numpy.ndarray
        ``(basin, member, param)`` model values.
    periods : sequence of Period
    warmup_days : int
    min_coverage : float
    series : bool
        The runs must have kept their simulated series.

    Returns
    -------
    bool
        False when the store is absent or differs in basins, members, parameter values, periods,
        warm-up or least coverage, or kept no series that are needed (it must then be made anew).
    """
    from lsegeo.ensembles.store import open_ensemble
    from lsegeo.io.stores import root_attrs
    from lsegeo.periods import periods_json

    path = Path(path)
    if not path.exists():
        return False
    old = open_ensemble(path)
    attrs = root_attrs(path)
    return (("qsim" in old or not series) and old.sizes.get("member") == params.shape[1]
            and [str(b) for b in old["basin"].values] == [str(b) for b in basins]
            and attrs.get("lsegeo_periods") == periods_json(periods)
            and int(attrs.get("lsegeo_warmup_days", -1)) == int(warmup_days)
            and float(attrs.get("lsegeo_min_coverage", -1.0)) == float(min_coverage)
            and np.allclose(old["params"].transpose("basin", "member", "param").values, params, equal_nan=True))


def score_responses(runs: str | Path, groups: np.ndarray, observed: str | Path, basins_store: str | Path,
                    objectives: Sequence[str]) -> np.ndarray:
    """Score the responses of groups of members of a finished ensemble store.

    A group of several members responds with the mean of their simulated flows, scored as the
    runner scores a member (:func:`lsegeo.ensembles.runner.score_members`: the store's periods,
    warm-up and least coverage) against ``observed``. A group of one member is that member: when
    ``observed`` is the basins store the runner scored against, its scores are read from the store,
    otherwise they are computed from its series like an averaged group's. Only what is computed
    needs the store's kept series.

    Parameters
    ----------
    runs : path-like
        An ensemble store whose members have run (created with ``keep_series=True`` when anything
        is computed, see above; the store's objectives must include ``objectives``).
    groups : numpy.ndarray
        ``(n_basins, n_groups, n_members)`` bool: which members make each group's response in
        each basin (a group with no member is NaN).
    observed : path-like
        A basins store or CAMELS-layout table (:func:`read_observed`), for averaged groups.
    basins_store : path-like
        For a table's areas.
    objectives : sequence of str

    Returns
    -------
    numpy.ndarray
        ``(n_basins, n_groups, n_periods, n_objectives)`` scores, periods in the store's order.
        NaN where a member of the group failed or the period is covered too little.

    Raises
    ------
    InputFormatError
        A group averages members but the store kept no series, an objective is not the store's,
        or ``groups`` does not match its basins and members.
    """
    from lsegeo.ensembles.runner import score_members
    from lsegeo.ensembles.store import open_ensemble
    from lsegeo.io.stores import root_attrs
    from lsegeo.periods import period_slices, periods_from_json, simulation_window

    ens = open_ensemble(runs)
    groups = np.asarray(groups, dtype=bool)
    n_b, n_m = ens.sizes["basin"], ens.sizes["member"]
    if groups.ndim != 3 or groups.shape[0] != n_b or groups.shape[2] != n_m:
        raise InputFormatError(str(runs), None, f"groups has shape {groups.shape}, expected ({n_b}, n_groups, {n_m})")
    have = [str(o) for o in ens["objective"].values]
    missing = [o for o in objectives if o not in have]
    if missing:
        raise InputFormatError(str(runs), "scores", f"has no objective {missing} (it has {have})")
    size = groups.sum(axis=2)                                                   # (basin, group)
    failed = ens["status"].transpose("basin", "member").values != 1
    stored = ens["scores"].sel(objective=list(objectives)).transpose("basin", "member", "period", "objective").values
    out = np.full((n_b, groups.shape[1], stored.shape[2], len(objectives)), np.nan)
    attrs = root_attrs(runs)
    scored_against = attrs.get("lsegeo_basins_store")
    same = scored_against is not None and (str(observed) == str(scored_against) or (
        "://" not in str(observed) and Path(observed).resolve() == Path(str(scored_against)).resolve()))
    if same:
        b, g = np.nonzero(size == 1)
        out[b, g] = stored[b, groups[b, g].argmax(axis=1)]
    averaged = size > 1 if same else size > 0                                  # what is computed from the series
    if not averaged.any():
        return out
    if "qsim" not in ens:
        raise InputFormatError(str(runs), "qsim", "the store kept no simulated series (keep_series); the mean "
                               "response of several members, or scores against other observations, cannot be "
                               "computed")
    periods = periods_from_json(attrs["lsegeo_periods"])
    window = simulation_window(periods, int(attrs.get("lsegeo_warmup_days", 365)))
    slices = period_slices(window, periods)
    month = window.month.to_numpy()
    min_coverage = float(attrs.get("lsegeo_min_coverage", 0.8))
    rows = np.flatnonzero(averaged.any(axis=1))
    obs = read_observed(observed, [str(x) for x in ens["basin"].values[rows]], window, basins_store)
    qsim = ens["qsim"].transpose("basin", "member", "time")
    step = int(attrs.get("lsegeo_chunk_basins", 64)) or 64                      # read whole chunks at a time
    block, start = None, -1
    for j, i in enumerate(rows):
        if i // step != start:
            start = i // step
            block = qsim[start * step:(start + 1) * step].values
        use = averaged[i] & ~(groups[i] & failed[i]).any(axis=1)                 # a failed member spoils its group
        if not use.any():
            continue
        weights = groups[i, use] / size[i, use][:, None]                         # (groups, member): each row a mean
        flows = weights @ block[i - start * step].astype(np.float64)            # (groups, time)
        out[i, np.flatnonzero(use)] = score_members(flows, obs[j], month, slices, objectives, min_coverage)
    return out


def evaluate_parameters(params: np.ndarray, basins: Sequence[str], observed: str | Path, *, basins_store: str | Path,
                        model: str, space: Any, periods: Sequence[Any], objective: str = "kgeprime",
                        warmup_days: int = 365, min_coverage: float = 0.8, runs: str | Path,
                        client: Any = None, progress: bool = True, response: str = "point") -> Evaluation:
    """Run the model with a product's sets and score them against observations.

    Parameters
    ----------
    params : numpy.ndarray
        ``(n_basins, n_params)`` point estimates, or ``(n_basins, K, n_params)`` the product's
        samples, in model units.
    basins : sequence of str
        Their gauge ids; they need forcing in ``basins_store``.
    observed : path-like
        Basins store or CAMELS-layout table (:func:`read_observed`).
    basins_store : path-like
        Forcing (and areas).
    model : str
        A model that runs here (``hbv``).
    space : ParameterSpace
    periods : sequence of Period
    objective : str
        The score reported.
    warmup_days, min_coverage
        As for ensembles.
    runs : path-like
        The ensemble store of the runs (created, or resumed when it holds the same sets).
    client : distributed.Client, optional
    progress : bool
    response : {"point", "mean"}
        What the product predicts with: sample 0, or the mean flow of all K samples
        (:data:`lsegeo.regionalize.methods.RESPONSES`).

    Returns
    -------
    Evaluation

    Raises
    ------
    InputFormatError
        No basin has forcing in the basins store (those without are left out with a warning),
        or the model runs outside lsegeo.
    ValueError
        ``response`` is not one of ``"point"``, ``"mean"``.
    """
    from lsegeo.calibration.comparison import bootstrap_median
    from lsegeo.ensembles.runner import run_ensemble
    from lsegeo.ensembles.store import create_ensemble, open_ensemble
    from lsegeo.io.stores import open_store
    from lsegeo.models.protocol import is_external
    from lsegeo.models.registry import get_model

    if response not in ("point", "mean"):
        raise ValueError(f"response must be 'point' or 'mean', got {response!r}")
    if is_external(get_model(model)):
        raise InputFormatError(f"model {model!r}", None,
                               "runs outside lsegeo; a product of it cannot be evaluated here")
    params = np.asarray(params, dtype=np.float64)
    if params.ndim == 2:
        params = params[:, None, :]
    if response == "point":
        params = params[:, :1]
    basins = [str(b) for b in basins]
    have = {str(b) for b in open_store(basins_store, "forcing")["basin"].values}
    keep = [i for i, b in enumerate(basins) if b in have]
    if not keep:
        raise InputFormatError(str(basins_store), None, f"none of the {len(basins)} basins of the product has forcing "
                                                        "here: nothing can be run")
    if len(keep) < len(basins):
        logger.warning("%d basin(s) of the product have no forcing in %s and are not run: %s",
                       len(basins) - len(keep), basins_store, [b for b in basins if b not in have][:5])
        basins = [basins[i] for i in keep]
        params = params[keep]
    k = params.shape[1]
    sets = np.concatenate([params, np.broadcast_to(space.default, (len(basins), 1, len(space)))], axis=1)
    runs = Path(runs)
    if not reusable_runs(runs, basins, sets, periods, warmup_days, min_coverage):
        create_ensemble(runs, basins_store=basins_store, basins=basins, model=model, space=space, params=sets,
                        periods=periods, objectives=[objective], warmup_days=warmup_days, keep_series=True,
                        min_coverage=min_coverage, overwrite=runs.exists(), call="lsegeo evaluate")
    run_ensemble(runs, client=client, progress=progress, call="lsegeo evaluate")
    groups = np.zeros((len(basins), 2, k + 1), dtype=bool)
    groups[:, 0, :k] = True                                                  # the product's response
    groups[:, 1, k] = True                                                   # the default set
    scores = score_responses(runs, groups, observed, basins_store, [objective])[..., 0]   # (basin, group, period)
    names = [str(p) for p in open_ensemble(runs)["period"].values]
    ds = xr.Dataset({"product": (("basin", "period"), scores[:, 0]), "default": (("basin", "period"), scores[:, 1])},
                    coords={"basin": basins, "period": names}, attrs={"objective": objective, "response": response,
                                                                       "samples": k})
    rows = []
    for j, p in enumerate(names):
        x, d = scores[:, 0, j], scores[:, 1, j]
        ok = np.isfinite(x) & np.isfinite(d)
        row: dict[str, Any] = {"period": p, "n": int(ok.sum())}
        if ok.any():
            med, lo, hi = bootstrap_median(x[ok])
            row.update(median=med, median_lo=lo, median_hi=hi, q25=float(np.percentile(x[ok], 25)),
                       q75=float(np.percentile(x[ok], 75)), better_than_default=float(np.mean(x[ok] > d[ok])),
                       default_median=float(np.median(d[ok])))
        rows.append(row)
    n_obs = int(np.isfinite(scores[:, 1]).any(axis=1).sum())
    logger.info("evaluated %d basins (%d scored)", len(basins), n_obs)
    cols = ["period", "n", "median", "median_lo", "median_hi", "q25", "q75", "better_than_default", "default_median"]
    return Evaluation(scores=ds, table=pd.DataFrame(rows).reindex(columns=cols))


def format_evaluation(ev: Evaluation, label: str = "KGE'") -> str:
    """The evaluation's table as text lines (one per period)."""
    lines = []
    for _, r in ev.table.iterrows():
        if r["n"] == 0:
            lines.append(f"{r['period']:<12} no basin with enough observations")
            continue
        lines.append(f"{r['period']:<12} n={int(r['n'])}  median {label} {r['median']:.3f} "
                     f"[{r['median_lo']:.3f}, {r['median_hi']:.3f}]  IQR {r['q25']:.3f}-{r['q75']:.3f}  "
                     f"better than default {100 * r['better_than_default']:.0f}% "
                     f"(default median {r['default_median']:.3f})")
    return "\n".join(lines)
