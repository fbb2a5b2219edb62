"""Regionalization by selection (``lse-select``): the ensemble member the emulator ranks best.

A basin (or grid cell) with attributes but no scores gets, of the parameter sets already run in
an ensemble, the one that a large-sample emulator predicts to score best there. No new
parameter set is proposed: the answer is always a set whose behaviour is known somewhere, which
is what Tang, Wood & Swenson (2025, section 3.4) compare the optimised regionalization with.

The pieces work on any ensemble store (:mod:`lsegeo.ensembles.store`):

* :func:`candidate_sets`: the distinct parameter sets of the members that ran (status done,
  with a finite score if an objective is named) in the chosen basins, failed members excluded;
* :func:`select_best`: the best candidate per attribute row, by the emulator's
  ``predict_features`` (the sense of the target decides best); :func:`rank_candidates`: the K
  best of each row, keeping only those from each block of predictions (bounded memory);
* :func:`lse_select`: both, for named basins, as a :class:`Selection`;
* :func:`actual_scores`: the score the selected set actually had in each basin, where the
  ensemble ran it there;
* :func:`held_out_selection`: spatial cross-validation on a training set
  (:class:`~lsegeo.emulators.features.TrainingSet`) over the folds of
  :mod:`lsegeo.regionalize.folds`: per fold, an emulator fitted on the other folds predicts
  every held-out row (its skill on unseen basins) and selects a member for every held-out basin
  among the sets run in the training basins, scored by that member's actual score.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lsegeo.emulators.features import space_from_store
from lsegeo.regionalize.folds import SpatialFolds

__all__ = ["Candidates", "Selection", "HeldOut", "candidate_sets", "select_best", "rank_candidates", "lse_select",
           "actual_scores", "held_out_selection"]

logger = logging.getLogger(__name__)


@dataclass
class Candidates:
    """Distinct parameter sets of an ensemble, the pool a selection chooses from.

    Attributes
    ----------
    params : numpy.ndarray
        ``(n, n_params)`` parameter values.
    unit : numpy.ndarray
        ``(n, n_params)`` the same in the unit cube of the store's parameter space.
    member : numpy.ndarray
        ``(n,)`` the ensemble member that carries each set (the lowest one, if several do).
    param_names : list of str
    """

    params: np.ndarray
    unit: np.ndarray
    member: np.ndarray
    param_names: list[str]

    def __len__(self) -> int:
        return len(self.member)


@dataclass
class Selection:
    """The member selected for each basin.

    Attributes
    ----------
    basins : list of str
    candidate : numpy.ndarray
        ``(n,)`` index into the candidates.
    member : numpy.ndarray
        ``(n,)`` ensemble member of the selected set.
    predicted : numpy.ndarray
        ``(n,)`` the emulator's predicted score of the selected set.
    params : numpy.ndarray
        ``(n, n_params)`` the selected parameter values.
    param_names : list of str
    target : str
        The emulator's target that ranked the candidates.
    sense : str
        ``"max"`` or ``"min"``.
    """

    basins: list[str]
    candidate: np.ndarray
    member: np.ndarray
    predicted: np.ndarray
    params: np.ndarray
    param_names: list[str]
    target: str
    sense: str

    def to_dataset(self) -> xr.Dataset:
        """The selection as a Dataset over ``basin`` (and ``param``)."""
        coords = {"basin": np.array(self.basins, dtype=object), "param": np.array(self.param_names, dtype=object)}
        return xr.Dataset(
            {"member": ("basin", self.member, {"long_name": "selected ensemble member"}),
             "predicted": ("basin", self.predicted, {"long_name": f"predicted {self.target} of the selected set"}),
             "params": (("basin", "param"), self.params, {"long_name": "selected parameter values"})},
            coords=coords, attrs={"method": "lse-select", "target": self.target, "sense": self.sense})


def _open(ensemble: str | Path | xr.Dataset) -> xr.Dataset:
    if isinstance(ensemble, xr.Dataset):
        return ensemble
    from lsegeo.ensembles.store import open_ensemble

    return open_ensemble(ensemble)


def candidate_sets(ensemble: str | Path | xr.Dataset, *, basins: Sequence[str] | None = None,
                   objective: str | None = None, period: str = "calibration") -> Candidates:
    """The distinct parameter sets that ran in an ensemble.

    Parameters
    ----------
    ensemble : path-like or xarray.Dataset
        An ensemble store or its ``ensemble`` group.
    basins : sequence of str, optional
        Basins whose members count; default all.
    objective : str, optional
        With it, a member counts only where its score for ``objective`` in ``period`` is finite.
    period : str

    Returns
    -------
    Candidates
        Ordered by member, then by first appearance.

    Raises
    ------
    KeyError
        An unknown basin, objective or period.
    ValueError
        No member ran.
    """
    from lsegeo.ensembles.store import DONE

    ens = _open(ensemble)
    if basins is not None:
        ens = ens.sel(basin=[str(b) for b in basins])
    ok = ens["status"].transpose("basin", "member").values == DONE
    if objective is not None:
        s = ens["scores"].sel(objective=objective, period=period).transpose("basin", "member").values
        ok &= np.isfinite(s)
    params = ens["params"].transpose("basin", "member", "param").values
    b, m = np.nonzero(ok)
    if len(b) == 0:
        raise ValueError("no member of the ensemble ran (status done) in the chosen basins")
    order = np.lexsort((b, m))  # by member, then basin
    rows, members = params[b[order], m[order]], m[order]
    _, first = np.unique(rows, axis=0, return_index=True)
    first = np.sort(first)
    space = space_from_store(ens)
    return Candidates(params=rows[first], unit=space.to_unit(rows[first]), member=members[first].astype(np.int64),
                      param_names=space.names)


def _target(emulator: Any, target: str | None) -> tuple[int, str, str]:
    names = list(emulator.target_names)
    name = names[0] if target is None else target
    if name not in names:
        raise KeyError(f"the emulator has no target {name!r}; it has {names}")
    j = names.index(name)
    senses = list(getattr(emulator, "target_senses", []) or [])
    return j, name, senses[j] if j < len(senses) else "max"


def select_best(emulator: Any, attr_rows: np.ndarray, candidates_unit: np.ndarray, *, target: str | None = None,
                max_rows: int = 500_000) -> tuple[np.ndarray, np.ndarray]:
    """The best candidate for each attribute row, by the emulator's prediction.

    Parameters
    ----------
    emulator : Emulator
        Has ``predict_features(attr_rows, u)``, ``target_names`` and ``target_senses``.
    attr_rows : numpy.ndarray
        ``(n_basins, n_attr)`` encoded attributes of the target basins.
    candidates_unit : numpy.ndarray
        ``(n_candidates, n_params)`` candidate sets in the unit cube.
    target : str, optional
        The target that ranks; default the emulator's first.
    max_rows : int
        Rows predicted at once (basins are batched so that ``batch * n_candidates`` stays below).

    Returns
    -------
    best : numpy.ndarray
        ``(n_basins,)`` int index of the chosen candidate.
    predicted : numpy.ndarray
        ``(n_basins, n_candidates)`` predicted target of every candidate.
    """
    _, sense = _target(emulator, target)[1:]
    a = np.atleast_2d(np.asarray(attr_rows, dtype=np.float64))
    pred = np.empty((len(a), len(np.atleast_2d(candidates_unit))))
    for lo, hi, block in _predicted_blocks(emulator, a, candidates_unit, target, max_rows):
        pred[lo:hi] = block
    ranked = np.where(np.isfinite(pred), pred, -np.inf if sense == "max" else np.inf)
    best = np.argmax(ranked, axis=1) if sense == "max" else np.argmin(ranked, axis=1)
    return best.astype(np.int64), pred


def _predicted_blocks(emulator: Any, a: np.ndarray, candidates_unit: np.ndarray, target: str | None,
                      max_rows: int):
    """``(lo, hi, (hi - lo, n_candidates) predictions)`` for blocks of attribute rows of at most ``max_rows`` rows."""
    j = _target(emulator, target)[0]
    u = np.atleast_2d(np.asarray(candidates_unit, dtype=np.float64))
    n_b, n_c = len(a), len(u)
    if n_c == 0:
        raise ValueError("there are no candidate parameter sets")
    step = max(1, max_rows // n_c)
    for lo in range(0, n_b, step):
        hi = min(n_b, lo + step)
        rows_a = np.repeat(a[lo:hi], n_c, axis=0)
        rows_u = np.tile(u, (hi - lo, 1))
        yield lo, hi, np.asarray(emulator.predict_features(rows_a, rows_u))[:, j].reshape(hi - lo, n_c)


def rank_candidates(emulator: Any, attr_rows: np.ndarray, candidates_unit: np.ndarray, k: int, *,
                    target: str | None = None, max_rows: int = 500_000) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best candidates for each attribute row, best first, in memory bounded by ``max_rows``.

    As :func:`select_best`, but only the ``k`` best of every row are kept from each block of
    predictions, so the memory is ``O(n_rows * k + max_rows)`` instead of
    ``O(n_rows * n_candidates)`` (a continental grid of 10^5 distinct attribute rows against 10^3
    candidates). Ties keep the candidates' order.

    Returns
    -------
    order : numpy.ndarray
        ``(n_rows, k)`` int index of the candidates, best first (``k`` capped at the number of
        candidates).
    predicted : numpy.ndarray
        ``(n_rows, k)`` their predicted target.
    """
    _, sense = _target(emulator, target)[1:]
    a = np.atleast_2d(np.asarray(attr_rows, dtype=np.float64))
    k = max(1, min(int(k), len(np.atleast_2d(candidates_unit))))
    order = np.empty((len(a), k), dtype=np.int64)
    top = np.empty((len(a), k))
    for lo, hi, block in _predicted_blocks(emulator, a, candidates_unit, target, max_rows):
        ranked = np.where(np.isfinite(block), block, -np.inf if sense == "max" else np.inf)
        idx = np.argsort(-ranked if sense == "max" else ranked, axis=1, kind="stable")[:, :k]
        order[lo:hi] = idx
        top[lo:hi] = np.take_along_axis(block, idx, axis=1)
    return order, top


def lse_select(emulator: Any, ensemble: str | Path | xr.Dataset, basins: Sequence[str], attributes: Any, *,
               target: str | None = None, candidate_basins: Sequence[str] | None = None,
               period: str = "calibration") -> Selection:
    """Select, for each basin, the ensemble member the emulator ranks best there.

    Parameters
    ----------
    emulator : Emulator
        A fitted emulator with ``predict_features`` (e.g. a
        :class:`~lsegeo.emulators.lse.LargeSampleEmulator`).
    ensemble : path-like or xarray.Dataset
        The ensemble store whose members are the candidates.
    basins : sequence of str
        The target basins (they need attributes, not scores).
    attributes : numpy.ndarray or xarray.Dataset or pandas.DataFrame
        Encoded attribute rows ``(len(basins), n_attr)`` in the order of ``basins``, or raw
        attributes (over ``basin``, or indexed by gauge id) that the emulator's ``encode``
        encodes as it encoded its training basins.
    target : str, optional
        The emulator target that ranks; default its first.
    candidate_basins : sequence of str, optional
        Basins whose members are candidates; default every basin of the ensemble.
    period : str
        Period of the target's scores that decide whether a member ran.

    Returns
    -------
    Selection

    Raises
    ------
    TypeError
        Raw attributes for an emulator without ``encode``.
    ValueError
        The number of attribute rows is not the number of basins.
    """
    basins = [str(b) for b in basins]
    j, name, sense = _target(emulator, target)
    ens = _open(ensemble)
    objective = name if name in [str(o) for o in ens["objective"].values] else None
    cands = candidate_sets(ens, basins=candidate_basins, objective=objective, period=period)
    if isinstance(attributes, np.ndarray):
        rows = attributes
    else:
        if not hasattr(emulator, "encode"):
            raise TypeError("this emulator has no encode(); pass the target basins' encoded attribute rows")
        sub = attributes.sel(basin=basins) if isinstance(attributes, xr.Dataset) else attributes.loc[basins]
        rows = emulator.encode(sub)
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    if len(rows) != len(basins):
        raise ValueError(f"{len(rows)} attribute rows for {len(basins)} basins")
    best, pred = select_best(emulator, rows, cands.unit, target=name)
    logger.info("lse-select: %d basins, %d candidate sets, target %s (%s)", len(basins), len(cands), name, sense)
    return Selection(basins=basins, candidate=best, member=cands.member[best],
                     predicted=pred[np.arange(len(best)), best], params=cands.params[best],
                     param_names=cands.param_names, target=name, sense=sense)


def actual_scores(ensemble: str | Path | xr.Dataset, selection: Selection, *, objective: str,
                  period: str = "calibration") -> np.ndarray:
    """The score each basin's selected set actually had in the ensemble.

    Parameters
    ----------
    ensemble : path-like or xarray.Dataset
    selection : Selection
    objective, period : str
        The score to read.

    Returns
    -------
    numpy.ndarray
        ``(n_basins,)``; NaN where the basin is not in the ensemble, the member did not run
        there, or the basin's member carries other parameter values.
    """
    from lsegeo.ensembles.store import DONE

    ens = _open(ensemble)
    have = {str(b): i for i, b in enumerate(ens["basin"].values)}
    out = np.full(len(selection.basins), np.nan)
    for i, (b, m) in enumerate(zip(selection.basins, selection.member.tolist(), strict=True)):
        if b not in have:
            continue
        one = ens.isel(basin=have[b], member=int(m))
        same = np.allclose(one["params"].values, selection.params[i], rtol=1e-12, atol=0.0)
        if int(one["status"].values) == DONE and same:
            out[i] = float(one["scores"].sel(objective=objective, period=period).values)
    return out


@dataclass
class HeldOut:
    """Spatial cross-validation of an emulator and of selection on it.

    Attributes
    ----------
    folds : SpatialFolds
    predicted : numpy.ndarray
        ``(rows, n_targets)`` out-of-fold prediction of every row of the training set.
    basins : list of str
        The held-out basins that have rows, in training-set order.
    member : numpy.ndarray
        ``(n,)`` member selected for each (-1: no candidate).
    selected_predicted : numpy.ndarray
        ``(n,)`` its predicted target.
    actual : numpy.ndarray
        ``(n, n_targets)`` its actual scores in the basin (NaN where it did not run there).
    seconds : float
        Time taken.
    """

    folds: SpatialFolds
    predicted: np.ndarray
    basins: list[str]
    member: np.ndarray
    selected_predicted: np.ndarray
    actual: np.ndarray
    seconds: float


def held_out_selection(emulator_factory: Callable[[], Any], ts: Any, folds: SpatialFolds, *,
                       target: str | None = None) -> HeldOut:
    """Spatial cross-validation: skill on unseen basins, and the member selected for each.

    For each fold, a new emulator (``emulator_factory()``) is fitted on the rows of the other
    folds' basins. It predicts every row of the held-out basins, and for each held-out basin
    ranks the distinct parameter sets of the training rows (members that ran in a training
    basin); the best is scored by the held-out basin's own row of the same member with the same
    parameters (NaN if that member did not run there).

    Parameters
    ----------
    emulator_factory : callable
        Returns a new unfitted emulator with ``fit(ts)`` and ``predict_features``.
    ts : lsegeo.emulators.features.TrainingSet
    folds : SpatialFolds
        Every basin of ``ts`` must have a fold.
    target : str, optional
        The target that ranks the candidates; default the first.

    Returns
    -------
    HeldOut
    """
    t0 = time.perf_counter()
    j = list(ts.target_names).index(target) if target is not None else 0
    pred = np.full(ts.target.shape, np.nan)
    row_of = {(int(b), int(m)): r for r, (b, m) in enumerate(zip(ts.basin_index, ts.member, strict=True))}
    chosen: dict[int, tuple[int, float, np.ndarray]] = {}
    for k, (train, test) in enumerate(folds.row_folds(ts)):
        if len(test) == 0 or len(train) == 0:
            continue
        em = emulator_factory().fit(ts.subset(train))
        pred[test] = em.predict_features(ts.attributes[ts.basin_index[test]], ts.params_unit[test])
        unit, first = np.unique(ts.params_unit[train], axis=0, return_index=True)
        member = ts.member[train][first]
        held = np.unique(ts.basin_index[test])
        best, p = select_best(em, ts.attributes[held], unit, target=ts.target_names[j])
        for i, b in enumerate(held.tolist()):
            row = row_of.get((b, int(member[best[i]])))
            same = row is not None and np.allclose(ts.params_unit[row], unit[best[i]], rtol=1e-12, atol=1e-15)
            actual = ts.target[row] if same else np.full(ts.target.shape[1], np.nan)
            chosen[b] = (int(member[best[i]]), float(p[i, best[i]]), actual)
        logger.info("%s fold %d/%d (%s): fitted on %d rows, %d held-out basins", folds.scheme, k + 1, folds.n_folds,
                    folds.labels[k], len(train), len(held))
    order = sorted(chosen)
    return HeldOut(folds=folds, predicted=pred, basins=[ts.basins[b] for b in order],
                   member=np.array([chosen[b][0] for b in order], dtype=np.int64),
                   selected_predicted=np.array([chosen[b][1] for b in order]),
                   actual=np.array([chosen[b][2] for b in order]).reshape(len(order), ts.target.shape[1]),
                   seconds=time.perf_counter() - t0)
