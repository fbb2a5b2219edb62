"""The table adapter: an ensemble run elsewhere (parameter sets + scores per basin) into an ensemble store.

Why in ``ingest``: like the CAMELS ingest, this step turns files made outside lsegeo into a
store that the rest of the pipeline reads, and runs no model; the model adapters
(:mod:`lsegeo.models`) are what *runs* members. The store is made by the ensemble store's own
:func:`lsegeo.ensembles.store.create_ensemble` (same layout, attributes and provenance as a
simulated ensemble), with the results set before it is written, in one atomic step.

What goes where (``ensemble`` group):

``params(basin, member, param)``
    Member ``m`` is the ``m``-th row of the parameter-set table (file order: trial 0, the
    default, first; ``lsegeo_table_trials`` lists the trial ids); the same sets in every basin.
``scores(basin, member, period, objective)``
    The table's score on its one period (e.g. KGE' on WY2005-2009) as ``objective`` and, with
    ``bounded``, its bounded form ``E / (2 - E)`` (nKGE', the emulators' default target,
    :func:`lsegeo.metrics.kernels.bounded_efficiency`).
``status(basin, member)``
    ``DONE`` where the table has a score; ``FAILED`` where it has none for a scored basin (its
    message lists the failed trials); in basins **without scores** (gauges in ``gauges`` but not
    in the score table, e.g. those whose streamflow the study withheld) the trials that failed
    in every scored basin are ``FAILED`` and the others ``DONE`` with NaN scores: they were run,
    not scored.
``has_scores(basin)``
    True for the basins of the score table. Basins without scores are kept (with attributes)
    so that regionalization can target them; ``score_note`` says why they have no score.
``run(basin, member)``
    ``1`` for every finished (basin, member): the one external launch that made the table.

The root attributes record the sha256 of every table (``lsegeo_inputs_sha256`` and the PROV
record), ``lsegeo_source`` and the citation (``references``), and ``lsegeo_table_failed_trials``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lsegeo.design import Parameter, ParameterSpace
from lsegeo.ensembles.store import DONE, FAILED, create_ensemble
from lsegeo.errors import InputFormatError, StoreError
from lsegeo.io.stores import open_store
from lsegeo.metrics.kernels import bounded_efficiency
from lsegeo.periods import Period

__all__ = ["TableEnsemble", "space_from_table", "ingest_table_ensemble", "BOUNDED"]

logger = logging.getLogger(__name__)

#: the bounded objective added beside a table's efficiency score
BOUNDED = {"kgeprime": "nkgeprime", "kge": "nkge", "nse": "nnse"}


def space_from_table(table: pd.DataFrame, names: Sequence[str] | None = None, name: str = "table") -> ParameterSpace:
    """A parameter space from a parameter table (:func:`lsegeo.io.tables.read_parameter_table`).

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by parameter; ``default``, ``lower``, ``upper``, optional ``scale`` and ``units``.
    names : sequence of str, optional
        Parameters in the order wanted (default the table's order).
    name : str
        The space's name.

    Raises
    ------
    InputFormatError
        A name is not in the table.
    """
    names = list(table.index if names is None else names)
    missing = [n for n in names if n not in table.index]
    if missing:
        raise InputFormatError("parameter table", None, f"no row for parameter(s) {missing}")
    out = []
    for n in names:
        row = table.loc[n]
        scale = str(row.get("scale", "linear") or "linear")
        out.append(Parameter(n, float(row["lower"]), float(row["upper"]), float(row["default"]),
                             scale if scale in ("linear", "log") else "linear",  # type: ignore[arg-type]
                             str(row.get("units", "1") or "1")))
    return ParameterSpace(tuple(out), name=name)


class TableEnsemble:
    """Checked tables of an ensemble run elsewhere, ready to be written as an ensemble store.

    Parameters
    ----------
    parameter_sets : pandas.DataFrame
        ``(trial, parameter)`` values, indexed by trial id.
    scores : pandas.DataFrame
        ``(trial, gauge)`` scores (NaN where the run failed), indexed by trial id.
    space : ParameterSpace
        The parameters' space; its names must be the parameter-set columns.
    gauges : sequence of str, optional
        Every basin of the ensemble (default the score table's gauges); gauges without scores
        are basins without scores.
    files : mapping of str to str, optional
        The files the tables were read from (``parameter_sets``, ``scores``), named in errors.

    Raises
    ------
    InputFormatError
        Parameter columns not in the space (or space parameters without a column), trials that
        are not the same in the two tables, or scored gauges that are not in ``gauges``.
    """

    def __init__(self, parameter_sets: pd.DataFrame, scores: pd.DataFrame, space: ParameterSpace,
                 gauges: Sequence[str] | None = None, files: Mapping[str, str] | None = None) -> None:
        files = dict(files or {})
        sets_file = str(files.get("parameter_sets", "parameter-set table"))
        scores_file = str(files.get("scores", "score table"))
        cols = [str(c) for c in parameter_sets.columns]
        extra = [c for c in cols if c not in space.names]
        absent = [n for n in space.names if n not in cols]
        if extra or absent:
            raise InputFormatError(sets_file, 1,
                                   f"parameter column(s) {extra} are not in the parameter table / space "
                                   f"{space.name!r}" + (f"; no column for {absent}" if absent else ""))
        t_par, t_sco = list(parameter_sets.index), list(scores.index)
        only_par = sorted(set(t_par) - set(t_sco))
        only_sco = sorted(set(t_sco) - set(t_par))
        if only_par or only_sco:
            parts = [f"trial(s) {ids[:10]}{' ...' if len(ids) > 10 else ''} only in the {where}"
                     for ids, where in ((only_par, "parameter sets"), (only_sco, "scores")) if ids]
            raise InputFormatError(f"{scores_file} and {sets_file}", None,
                                   "the trials do not match: " + "; ".join(parts))
        self.trials = [int(t) for t in t_par]
        self.space = space
        self.params = parameter_sets[space.names].to_numpy(dtype="float64")
        scored = [str(g) for g in scores.columns]
        self.gauges = list(scored) if gauges is None else [str(g) for g in gauges]
        unknown = [g for g in scored if g not in set(self.gauges)]
        if unknown:
            raise InputFormatError(scores_file, 1, f"gauge(s) {unknown[:10]} of the score table are not among the "
                                                     f"{len(self.gauges)} gauges of the ensemble")
        table = scores.loc[self.trials, scored].to_numpy(dtype="float64").T  # (scored gauge, trial)
        self.has_scores = np.isin(self.gauges, scored)
        self.score = np.full((len(self.gauges), len(self.trials)), np.nan)
        self.score[self.has_scores] = table[[scored.index(g) for g in np.asarray(self.gauges)[self.has_scores]]]
        failed_scored = ~np.isfinite(self.score[self.has_scores])
        self.failed_everywhere = (failed_scored.all(axis=0) if len(scored)
                                  else np.zeros(len(self.trials), dtype=bool))
        self.failed = np.where(self.has_scores[:, None], ~np.isfinite(self.score), self.failed_everywhere[None, :])

    @property
    def failed_trials(self) -> list[int]:
        """Trial ids without a score in any scored basin."""
        return [t for t, f in zip(self.trials, self.failed_everywhere, strict=True) if f]

    def variables(self, objective: str, bounded: bool) -> tuple[list[str], dict[str, Any]]:
        """The objectives and the ``ensemble`` variables to set (see the module docstring)."""
        objectives = [objective] + ([BOUNDED[objective]] if bounded and objective in BOUNDED else [])
        sc = self.score[:, :, None, None]
        scores = np.concatenate([sc, bounded_efficiency(sc)], axis=3) if len(objectives) == 2 else sc
        status = np.where(self.failed, FAILED, DONE).astype("int8")
        messages = []
        for i, has in enumerate(self.has_scores):
            bad = [t for t, f in zip(self.trials, self.failed[i], strict=True) if f]
            if not bad:
                messages.append("")
                continue
            why = "no score in the table" if has else "no score in any scored basin"
            messages.append(f"{len(bad)} trial(s) failed elsewhere ({why}): trials {', '.join(map(str, bad))}")
        note = np.where(self.has_scores, "", "not scored: the score table has no score of this basin "
                                             "(e.g. its streamflow is withheld for regionalization)")
        variables = {
            "scores": scores, "status": status, "run": np.ones(status.shape, dtype="int32"),
            "status_message": np.array(messages, dtype=object),
            "score_note": np.array(note, dtype=object)[:, None],
            "has_scores": ("basin", self.has_scores,
                           {"long_name": "the basin has scores (false: run elsewhere but not scored, a "
                                         "regionalization target)"}),
        }
        return objectives, variables


def ingest_table_ensemble(
    out: str | Path,
    tables: TableEnsemble,
    *,
    basins_store: str | Path,
    period: Period,
    objective: str = "kgeprime",
    bounded: bool = True,
    model: str = "external",
    sources: Mapping[str, str] | None = None,
    attrs: Mapping[str, Any] | None = None,
    chunk_basins: int = 64,
    overwrite: bool = False,
    call: str = "",
) -> Path:
    """Write an ensemble store from the tables of an ensemble run elsewhere.

    Parameters
    ----------
    out : path-like
        The ensemble store to write (atomically).
    tables : TableEnsemble
        The checked tables.
    basins_store : path-like
        The basins store whose ``attributes`` the emulators read; every gauge must be in it.
        Its path is recorded (``lsegeo_basins_store``), so that
        :func:`lsegeo.emulators.features.training_set` can be given it.
    period : Period
        The period the table's scores are on (one period).
    objective : str
        The registered objective the table holds (``kgeprime``).
    bounded : bool
        Add the bounded objective (``nkgeprime`` for ``kgeprime``).
    model : str
        Recorded as ``lsegeo_model`` (``ctsm``).
    sources : mapping of str to str, optional
        The tables' names to their sha256 (provenance).
    attrs : mapping, optional
        More root attributes (``references``, ``lsegeo_source``, ...).
    chunk_basins : int
        Basins per zarr chunk.
    overwrite : bool
        Replace an existing store.
    call : str
        The command, for ``history``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    StoreError
        Gauges that are not in the basins store's attributes (named), or ``out`` exists.
    """
    have = {str(b) for b in open_store(basins_store, "attributes").basin.values}
    missing = [g for g in tables.gauges if g not in have]
    if missing:
        raise StoreError(f"{len(missing)} gauge(s) of the table are not in the basins store {basins_store}: "
                         f"{missing[:10]}{'...' if len(missing) > 10 else ''}")
    objectives, variables = tables.variables(objective, bounded)
    extra = {"lsegeo_source_kind": "table", "lsegeo_runs": 1,
             "lsegeo_table_trials": json.dumps(tables.trials),
             "lsegeo_table_failed_trials": json.dumps(tables.failed_trials),
             "lsegeo_table_scored_basins": int(tables.has_scores.sum()), **dict(attrs or {})}
    path = create_ensemble(out, basins_store=basins_store, basins=tables.gauges, model=model, space=tables.space,
                           params=tables.params, periods=[period], objectives=objectives, warmup_days=0,
                           chunk_basins=chunk_basins, overwrite=overwrite, call=call or "ingest table",
                           variables=variables, extra_inputs=dict(sources or {}), extra_attrs=extra,
                           basins_group="attributes")
    logger.info("%s: %d basins (%d with scores) x %d trials (%d failed everywhere) from tables", out,
                len(tables.gauges), int(tables.has_scores.sum()), len(tables.trials), len(tables.failed_trials))
    return path
