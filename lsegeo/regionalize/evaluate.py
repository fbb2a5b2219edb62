"""Score a basin product against observed streamflow by running the embedded model with it.

:func:`evaluate_parameters` runs the model with each basin's point estimate and with the default
set (the baseline of every figure) through an ensemble store (:mod:`lsegeo.ensembles`: dask,
resumable, atomic) that keeps the simulated series, and scores them against observations given
either as a basins store (its ``observed`` group) or as a table in the CAMELS layout (a ``date``
column and one column per 8-digit gauge id, in ft3 s-1, ``-999`` and empty cells missing),
converted to mm day-1 with the basin area of the basins store (``area_gages2``, as ingest does).
The figures are those of the cross-validation: median with a bootstrap 95% interval,
quartiles, and the share of basins better than with the default set.
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

__all__ = ["Evaluation", "read_observed", "evaluate_parameters", "format_evaluation"]

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


def evaluate_parameters(params: np.ndarray, basins: Sequence[str], observed: str | Path, *, basins_store: str | Path,
                        model: str, space: Any, periods: Sequence[Any], objective: str = "kgeprime",
                        warmup_days: int = 365, min_coverage: float = 0.8, runs: str | Path,
                        client: Any = None, progress: bool = True) -> Evaluation:
    """Run the model with a product's sets and score them against observations.

    Parameters
    ----------
    params : numpy.ndarray
        ``(n_basins, n_params)`` point estimates in model units.
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

    Returns
    -------
    Evaluation

    Raises
    ------
    InputFormatError
        No basin has forcing in the basins store (those without are left out with a warning),
        or the model runs outside lsegeo.
    """
    from lsegeo.calibration.comparison import bootstrap_median
    from lsegeo.ensembles.runner import run_ensemble, score_members
    from lsegeo.ensembles.store import create_ensemble, open_ensemble
    from lsegeo.io.stores import open_store
    from lsegeo.models.protocol import is_external
    from lsegeo.models.registry import get_model
    from lsegeo.periods import period_slices, simulation_window

    if is_external(get_model(model)):
        raise InputFormatError(f"model {model!r}", None,
                               "runs outside lsegeo; a product of it cannot be evaluated here")
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
        params = np.asarray(params)[keep]
    sets = np.stack([np.asarray(params, dtype=np.float64),
                     np.broadcast_to(space.default, (len(basins), len(space)))], axis=1)
    runs = Path(runs)
    make = True
    if runs.exists():
        old = open_ensemble(runs)
        make = not (old.sizes.get("member") == 2 and list(map(str, old["basin"].values)) == basins and
                    np.allclose(old["params"].transpose("basin", "member", "param").values, sets, equal_nan=True))
    if make:
        create_ensemble(runs, basins_store=basins_store, basins=basins, model=model, space=space, params=sets,
                        periods=periods, objectives=[objective], warmup_days=warmup_days, keep_series=True,
                        min_coverage=min_coverage, overwrite=runs.exists(), call="lsegeo evaluate")
    run_ensemble(runs, client=client, progress=progress, call="lsegeo evaluate")
    ens = open_ensemble(runs)
    window = simulation_window(periods, warmup_days)
    qsim = ens["qsim"].transpose("basin", "member", "time").values
    obs = read_observed(observed, basins, window, basins_store)
    slices = period_slices(window, periods)
    month = window.month.to_numpy()
    scores = np.stack([score_members(qsim[i], obs[i], month, slices, [objective], min_coverage)[:, :, 0]
                       for i in range(len(basins))])                       # (basin, member, period)
    names = list(slices)
    ds = xr.Dataset({"product": (("basin", "period"), scores[:, 0]), "default": (("basin", "period"), scores[:, 1])},
                    coords={"basin": basins, "period": names}, attrs={"objective": objective})
    rows = []
    for k, p in enumerate(names):
        x, d = scores[:, 0, k], scores[:, 1, k]
        ok = np.isfinite(x) & np.isfinite(d)
        row: dict[str, Any] = {"period": p, "n": int(ok.sum())}
        if ok.any():
            med, lo, hi = bootstrap_median(x[ok])
            row.update(median=med, median_lo=lo, median_hi=hi, q25=float(np.percentile(x[ok], 25)),
                       q75=float(np.percentile(x[ok], 75)), better_than_default=float(np.mean(x[ok] > d[ok])),
                       default_median=float(np.median(d[ok])))
        rows.append(row)
    logger.info("evaluated %d basins (%d with observations)", len(basins), int(np.isfinite(obs).any(axis=1).sum()))
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
