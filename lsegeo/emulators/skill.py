"""Cross-validated skill of the emulators.

Two fold schemes (:data:`lsegeo.emulators.registry.FOLD_SCHEMES`):

``grouped`` (default for the LSE)
    K folds of *basins* (:class:`sklearn.model_selection.GroupKFold` with shuffling): every
    member of a basin is in the same fold, so no basin is in both the training and the test
    rows; this measures how well the emulator predicts basins it has not seen (the study's
    "spatial"/"group" CV).
``within_basin`` (default for the SSE)
    K folds of the *members of each basin* (each basin's rows shuffled with the seed and dealt
    round-robin to the folds, as :class:`sklearn.model_selection.KFold` with shuffling does);
    every basin is in every training fold (the study's "in-basin" CV).

Every row is predicted once, by the emulator fitted without its fold. Per target, the skill is
(:func:`skill_metrics`): the Pearson correlation between predicted and actual scores within each
basin (over its members), summarised by its median and mean over basins and by the share of
basins with a correlation below 0.5 (basins whose correlation is undefined, constant predictions
or targets, are left out and counted); the median over basins of the RMSE; and the correlation
and RMSE over all rows together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lsegeo.emulators.features import TrainingSet
from lsegeo.emulators.registry import DEFAULT_FOLD_SCHEME, FOLD_SCHEMES

__all__ = ["grouped_folds", "within_basin_folds", "cross_validate", "skill_metrics", "format_skill"]

logger = logging.getLogger(__name__)

Folds = list[tuple[np.ndarray, np.ndarray]]


def grouped_folds(ts: TrainingSet, n_folds: int = 5, seed: int = 0) -> Folds:
    """K folds of basins: ``[(train_rows, test_rows), ...]`` with no basin on both sides.

    Uses :class:`sklearn.model_selection.GroupKFold` (``shuffle=True``, ``random_state=seed``)
    with the basin as group.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        ``n_folds`` pairs of int row indices into ``ts``; every row is in one test fold.

    Raises
    ------
    ValueError
        Fewer basins with rows than folds.
    """
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(ts.basin_index))
    if n_groups < n_folds:
        raise ValueError(f"grouped {n_folds}-fold CV needs at least {n_folds} basins with rows, got {n_groups}")
    gkf = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    rows = np.arange(len(ts))
    return [(tr, te) for tr, te in gkf.split(rows, groups=ts.basin_index)]


def within_basin_folds(ts: TrainingSet, n_folds: int = 5, seed: int = 0) -> Folds:
    """K folds of each basin's members: ``[(train_rows, test_rows), ...]``.

    Each basin's rows are shuffled (seeded) and dealt to the folds in turn, so a basin with at
    least ``n_folds`` rows has rows in every test fold and in every training fold.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        ``n_folds`` pairs of int row indices into ``ts``; every row is in one test fold.
    """
    rng = np.random.default_rng(seed)
    fold = np.empty(len(ts), dtype=np.int64)
    order = np.argsort(ts.basin_index, kind="stable")
    bounds = np.flatnonzero(np.diff(ts.basin_index[order])) + 1
    for rows in np.split(order, bounds):
        if len(rows):
            fold[rng.permutation(rows)] = np.arange(len(rows)) % n_folds
    all_rows = np.arange(len(ts))
    return [(all_rows[fold != k], all_rows[fold == k]) for k in range(n_folds)]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return np.nan
    da, db = a - a.mean(), b - b.mean()
    den = np.sqrt((da * da).sum() * (db * db).sum())
    return float((da * db).sum() / den) if den > 0 else np.nan


def skill_metrics(basin_index: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                  target_names: list[str]) -> dict[str, dict[str, float]]:
    """Per-target skill of predictions against actual scores.

    Parameters
    ----------
    basin_index : numpy.ndarray
        ``(rows,)`` basin of each row.
    y_true, y_pred : numpy.ndarray
        ``(rows, n_targets)``; rows with a non-finite prediction are left out.
    target_names : list of str

    Returns
    -------
    dict
        ``{target: {"median_corr", "mean_corr", "share_corr_below_0.5", "median_rmse",
        "median_bias", "overall_corr", "overall_rmse", "n_basins", "n_basins_undefined_corr",
        "rows"}}``; ``median_bias`` is the median over basins of the mean of ``y_pred - y_true``
        (positive: the emulator promises more than the model gives, for a target maximised).
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(basin_index), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(basin_index), -1)
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(target_names):
        ok = np.isfinite(y_pred[:, j]) & np.isfinite(y_true[:, j])
        b, t, p = basin_index[ok], y_true[ok, j], y_pred[ok, j]
        order = np.argsort(b, kind="stable")
        b, t, p = b[order], t[order], p[order]
        cuts = np.flatnonzero(np.diff(b)) + 1
        pairs = list(zip(np.split(p, cuts), np.split(t, cuts), strict=True)) if len(b) else []
        corr = np.array([_pearson(pi, ti) for pi, ti in pairs]) if len(b) else np.zeros(0)
        rmse = np.array([np.sqrt(np.mean((pi - ti) ** 2)) for pi, ti in pairs]) if len(b) else np.zeros(0)
        bias = np.array([np.mean(pi - ti) for pi, ti in pairs]) if len(b) else np.zeros(0)
        defined = corr[np.isfinite(corr)]
        out[name] = {
            "median_corr": float(np.median(defined)) if len(defined) else np.nan,
            "mean_corr": float(np.mean(defined)) if len(defined) else np.nan,
            "share_corr_below_0.5": float(np.mean(defined < 0.5)) if len(defined) else np.nan,
            "median_rmse": float(np.median(rmse)) if len(rmse) else np.nan,
            "median_bias": float(np.median(bias)) if len(bias) else np.nan,
            "overall_corr": _pearson(p, t),
            "overall_rmse": float(np.sqrt(np.mean((p - t) ** 2))) if len(p) else np.nan,
            "n_basins": len(corr),
            "n_basins_undefined_corr": int(len(corr) - len(defined)),
            "rows": len(p),
        }
    return out


def _fit(em: Any, ts: TrainingSet, client: Any) -> Any:
    return em.fit(ts, client=client) if client is not None else em.fit(ts)


def cross_validate(emulator_factory: Callable[[], Any], ts: TrainingSet, n_folds: int = 5, seed: int = 0,
                   scheme: str | None = None, client: Any = None) -> dict[str, Any]:
    """K-fold cross-validated skill of an emulator.

    Parameters
    ----------
    emulator_factory : callable
        ``emulator_factory()`` returns a new unfitted emulator (its ``kind`` picks the default
        scheme).
    ts : TrainingSet
    n_folds : int
    seed : int
        Seed of the fold assignment.
    scheme : {"grouped", "within_basin"}, optional
        Default: ``grouped`` for the LSE, ``within_basin`` for the SSE.
    client : distributed.Client, optional
        Passed to the emulators' ``fit`` (the SSE fits its basins as dask tasks).

    Returns
    -------
    dict
        ``cv_scheme``, ``cv_folds``, ``cv_seed``, ``cv_rows``, ``cv_basins``, ``cv_seconds``
        and ``cv_targets`` (``{target: metrics}``, see :func:`skill_metrics`). Keys are
        prefixed ``cv_`` so the dict can be merged into an emulator's ``skill``.

    Raises
    ------
    lsegeo.errors.UnknownNameError
        ``scheme`` is not in :data:`~lsegeo.emulators.registry.FOLD_SCHEMES` (a :class:`KeyError`).
    ValueError
        Fewer than 2 folds, or (grouped) fewer basins with rows than folds.
    """
    t0 = time.perf_counter()
    probe = emulator_factory()
    kind = getattr(probe, "kind", "lse")
    scheme = scheme or DEFAULT_FOLD_SCHEME.get(kind, "grouped")
    make_folds = FOLD_SCHEMES.get(scheme)
    if n_folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {n_folds}")
    folds = make_folds(ts, n_folds, seed)
    pred = np.full(ts.target.shape, np.nan)
    for k, (train, test) in enumerate(folds):
        if len(test) == 0 or len(train) == 0:
            continue
        em = probe if k == 0 else emulator_factory()
        logger.debug("CV fold %d of %d (%s): fitting on %d rows, predicting %d", k + 1, len(folds), scheme,
                     len(train), len(test))
        _fit(em, ts.subset(train), client)
        pos = {b: i for i, b in enumerate(em.basins)}
        names = np.asarray(ts.basins, dtype=object)[ts.basin_index[test]]
        known = np.array([n in pos for n in names], dtype=bool)
        if known.any():
            idx = np.array([pos[n] for n in names[known]], dtype=np.int64)
            pred[test[known]] = em.predict(idx, ts.params_unit[test[known]])
    targets = skill_metrics(ts.basin_index, ts.target, pred, list(ts.target_names))
    return {"cv_scheme": scheme, "cv_folds": int(n_folds), "cv_seed": int(seed), "cv_rows": len(ts),
            "cv_basins": len(np.unique(ts.basin_index)), "cv_seconds": time.perf_counter() - t0,
            "cv_emulator": kind, "cv_targets": targets}


def _fmt(x: Any, spec: str) -> str:
    try:
        return format(float(x), spec) if np.isfinite(float(x)) else "nan"
    except (TypeError, ValueError):
        return str(x)


def _table(targets: dict[str, dict[str, float]]) -> list[str]:
    head = f"  {'target':<22}{'median r':>9}{'mean r':>8}{'r<0.5':>8}{'median RMSE':>13}{'median bias':>13}" \
           f"{'overall r':>11}{'overall RMSE':>14}{'basins':>8}"
    lines = [head]
    for name, m in targets.items():
        lines.append(f"  {name:<22}{_fmt(m.get('median_corr'), '.3f'):>9}{_fmt(m.get('mean_corr'), '.3f'):>8}"
                     f"{_fmt(100 * m.get('share_corr_below_0.5', np.nan), '.1f') + '%':>8}"
                     f"{_fmt(m.get('median_rmse'), '.4f'):>13}{_fmt(m.get('median_bias', np.nan), '+.4f'):>13}"
                     f"{_fmt(m.get('overall_corr'), '.3f'):>11}"
                     f"{_fmt(m.get('overall_rmse'), '.4f'):>14}{int(m.get('n_basins', 0)):>8}")
    return lines


def format_skill(skill: dict[str, Any]) -> str:
    """A printable summary of a skill dict (from :func:`cross_validate` or an emulator's ``skill``)."""
    lines = []
    if "kind" in skill:
        what = skill["kind"].upper() + (f" ({skill['backend']})" if skill.get("backend") else "")
        fit = f"{what} fitted on {skill.get('training_rows', '?')} rows of {skill.get('training_basins', '?')} basins"
        if "fit_seconds" in skill:
            fit += f" in {_fmt(skill['fit_seconds'], '.1f')} s"
        lines.append(fit)
        if "chosen" in skill:
            for t, counts in skill["chosen"].items():
                lines.append(f"  {t}: surrogate chosen per basin by {skill.get('n_folds', 5)}-fold CV RMSE: "
                             + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if "selection_cv" in skill:
            lines.append("  out-of-fold skill of the chosen surrogates (the choice used the same folds):")
            lines += ["  " + s for s in _table(skill["selection_cv"])]
    if "cv_targets" in skill:
        scheme = {"grouped": "grouped by basin (no basin in both training and test folds)",
                  "within_basin": "within each basin (members split)"}.get(skill.get("cv_scheme"),
                                                                            skill.get("cv_scheme"))
        lines.append(f"{skill.get('cv_folds')}-fold cross-validation {scheme}, {skill.get('cv_rows')} rows of "
                     f"{skill.get('cv_basins')} basins, {_fmt(skill.get('cv_seconds', np.nan), '.1f')} s:")
        lines += _table(skill["cv_targets"])
    if "prospective_targets" in skill:
        if skill["prospective_targets"]:
            lines.append(f"prospective skill on the {skill.get('prospective_rows')} members it proposed in iteration "
                         f"{skill.get('prospective_iteration')} ({skill.get('prospective_basins')} basins), which it "
                         "was not trained on:")
            lines += _table(skill["prospective_targets"])
        else:
            lines.append("prospective skill: no member it proposed has run")
    return "\n".join(lines) if lines else "(no skill recorded)"
