"""Spatial cross-validation of regionalization methods, with real runs of every proposed set.

For each fold scheme (:data:`~lsegeo.regionalize.folds.SPATIAL_FOLD_SCHEMES`) and each fold,
the emulators and the donors see only the fold's training basins (their members and their
calibrations); every method proposes a set for each held-out basin; after the last fold the
proposed sets of all basins (one member per method, or all K samples of a method whose
prediction is their mean flow, such as ``donor-ensemble``) are run with the embedded model in an
ensemble store (:mod:`lsegeo.ensembles`; series kept only for averaged responses), and each
method's response is scored on
every period of the calibration store (:func:`lsegeo.regionalize.evaluate.score_responses`). A
basin's *calibrated* score is that of its own calibration (the best member of the store).

Reported per scheme, method and period (:func:`summary_table`): the median of the report
objective (KGE') over the held-out basins with a bootstrap 95% interval, the quartiles, the
share of basins better than the default set, and the gap closure
``(median regionalized - median default) / (median calibrated - median default)`` (medians over
the same basins; a per-basin ratio is unstable where calibration gained little).

Everything is checkpointed in the output folder: a fold's proposals (``<scheme>/fold_<k>.npz``,
valid per method for the same settings and held-out basins, and as a whole for the same training
data (:func:`~lsegeo.regionalize.checkpoint.training_digest`: a store that has grown since, or
other attributes or locations, make every fold again); a method added later, or one whose
settings changed, is computed alone) and each scheme's runs (``<scheme>/runs.zarr``, resumable as any ensemble store); a rerun skips what
is done.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.errors import InputFormatError
from lsegeo.regionalize.checkpoint import training_digest
from lsegeo.regionalize.folds import make_folds
from lsegeo.regionalize.methods import METHODS, Context, Targets, regionalize
from lsegeo.regionalize.settings import RegionalizeSettings
from lsegeo.regionalize.training import Training, camels_polygons, fit_emulators, load_training

__all__ = ["CrossValidation", "to_report_scale", "spatial_crossvalidation", "summary_table", "format_table",
           "interval_coverage", "fit_intervals", "prediction_skill", "DEFAULT_SCHEMES"]

logger = logging.getLogger(__name__)

#: the fold schemes of the cross-validation, in the order of the tables
DEFAULT_SCHEMES = ("study", "pub", "pur", "flood_cluster")


def to_report_scale(values: np.ndarray, objective: str, report: str) -> np.ndarray:
    """Predicted scores of ``objective`` on the scale of ``report``.

    nKGE' is KGE' bounded (:func:`lsegeo.metrics.kernels.bounded_efficiency`), so a prediction
    of nKGE' converts exactly to KGE'. Other pairs convert only when they are equal.

    Raises
    ------
    InputFormatError
        The objectives differ and are not a bounded/unbounded pair.
    """
    from lsegeo.metrics.kernels import unbounded_efficiency

    if objective == report:
        return np.asarray(values, dtype=np.float64)
    if objective == f"n{report}":
        return unbounded_efficiency(values)
    raise InputFormatError("objectives", None, f"cannot express predicted {objective} as {report}")


@dataclass
class CrossValidation:
    """Results of a spatial cross-validation.

    Attributes
    ----------
    scores : xarray.Dataset
        ``actual(scheme, method, basin, period)`` the report objective of each proposed set run
        in its held-out basin; ``predicted(scheme, method, basin)`` the emulators' prediction of
        it (report scale, calibration period); ``spread(scheme, method, basin)``;
        ``calibrated(basin, period)``; ``fold(scheme, basin)`` (-1 when a basin has no fold);
        ``seconds(scheme, method)`` method time summed over folds.
    table : pandas.DataFrame
        :func:`summary_table` of ``scores``.
    """

    scores: xr.Dataset
    table: pd.DataFrame


def _atomic_savez(path: Path, **arrays: Any) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


#: the settings family each method reads besides the shared ones
_FAMILY = {"donor-nearest": "donors", "donor-similar": "donors", "donor-ensemble": "donors", "lse-optimise": "optimise",
           "lse-amortised": "amortised"}


def _method_digest(settings: RegionalizeSettings, method: str) -> str:
    """Digest of what a method's proposals in a fold depend on: the shared settings and its own family's."""
    from lsegeo.provenance import sha256_json

    shared = (settings.objective, settings.period, settings.n_samples, settings.n_emulators, settings.attributes,
              settings.applicability_quantile, settings.emulator)
    family = getattr(settings, _FAMILY[method]) if method in _FAMILY else None
    return sha256_json(repr((shared, family)))  # frozen dataclasses: a stable repr


def _fold_proposals(training: Training, train: list[str], test: list[str], methods: Sequence[str],
                    settings: RegionalizeSettings, client: Any,
                    done: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every method's point estimate for the held-out basins of one fold (those not in ``done``)."""
    tr = training.restrict(train)
    t0 = time.perf_counter()
    ems = fit_emulators(tr.ts, settings)
    fit_s = time.perf_counter() - t0
    ctx = Context(tr, settings, ems, client=client)
    held = training.restrict(test)
    targets = Targets(held.basins, held.attributes, held.lat, held.lon)
    out: dict[str, np.ndarray] = {**(done or {}), "basins": np.array(held.basins),
                                  "emulator_seconds": np.array(fit_s)}
    if ems:
        from lsegeo.regionalize.applicability import Applicability

        app = Applicability.fit(ctx.encode(tr.attributes), quantile=settings.applicability_quantile)
        out["applicability"] = app.distance(ctx.rows(targets))
    for m in methods:
        if f"{m}/params" in out:
            continue
        r = regionalize(ctx, targets, m)
        out[f"{m}/params"] = r.point
        out[f"{m}/response"] = np.array(r.response)
        if r.response == "mean":
            out[f"{m}/samples"] = r.params
        out[f"{m}/predicted"] = r.predicted_score
        out[f"{m}/spread"] = r.spread
        out[f"{m}/seconds"] = np.array(r.seconds)
        out[f"{m}/settings"] = np.array(_method_digest(settings, m))
    return out


def _run_sets(path: Path, training: Training, basins_store: Path, params: np.ndarray, groups: np.ndarray,
              objectives: list[str], client: Any, progress: bool, methods: Sequence[str]) -> np.ndarray:
    """Run the proposed sets and score each method's response.

    ``params`` ``(basin, member, param)`` holds every method's sets side by side and ``groups``
    ``(basin, method, member)`` which members make each method's response (one member, or a
    method's K samples whose mean flow it predicts). Returns ``(basin, method, period, objective)``.
    """
    from lsegeo.ensembles.runner import run_ensemble
    from lsegeo.ensembles.store import create_ensemble
    from lsegeo.io.stores import root_attrs
    from lsegeo.periods import periods_from_json
    from lsegeo.regionalize.evaluate import reusable_runs, score_responses

    src = root_attrs(training.store)
    periods = periods_from_json(src["lsegeo_periods"])
    warmup, coverage = int(src.get("lsegeo_warmup_days", 365)), float(src.get("lsegeo_min_coverage", 0.8))
    series = bool((groups.sum(axis=2) > 1).any())                    # only averaged responses need the series
    if not reusable_runs(path, training.basins, params, periods, warmup, coverage, series=series):
        create_ensemble(path, basins_store=basins_store, basins=training.basins, model=str(src["lsegeo_model"]),
                        space=training.space, params=params, periods=periods,
                        objectives=objectives, warmup_days=warmup, min_coverage=coverage, overwrite=path.exists(),
                        keep_series=series, call="regionalization cross-validation runs",
                        extra_attrs={"lsegeo_methods": ",".join(methods)})
    run_ensemble(path, client=client, progress=progress, call="regionalization cross-validation runs")
    return score_responses(path, groups, basins_store, basins_store, objectives)


def spatial_crossvalidation(store: str | Path, basins_store: str | Path, out_dir: str | Path, *,
                            schemes: Sequence[str] = DEFAULT_SCHEMES, methods: Sequence[str] | None = None,
                            settings: RegionalizeSettings | None = None, basins: Sequence[str] | None = None,
                            client: Any = None, progress: bool = True, seed: int = 0,
                            data_dir: str | Path | None = None) -> CrossValidation:
    """Cross-validate regionalization methods over spatial folds, with real runs.

    Parameters
    ----------
    store : path-like
        A calibration store of the embedded model (its best member per basin is the basin's
        calibration; all its members are the emulator's rows).
    basins_store : path-like
        The basins store the calibration ran on.
    out_dir : path-like
        Folder of the checkpoints and runs (created).
    schemes : sequence of str
        Fold schemes (default all four).
    methods : sequence of str, optional
        Names of :data:`~lsegeo.regionalize.methods.METHODS` (default all; ``default`` is always
        added: the baseline).
    settings : RegionalizeSettings, optional
    basins : sequence of str, optional
        Limit to these basins (default every basin with a calibration).
    client : distributed.Client, optional
        Runs the sets (and the GA of ``lse-optimise``) on dask; default a local cluster started
        for the runs.
    progress : bool
    seed : int
        Seed of the ``pub`` folds.
    data_dir : path-like, optional
        The data directory of the flood clusters and, first, of the CAMELS polygons (the
        basins' centroids; without them there, the default places are searched); default found
        as :func:`lsegeo.locations.resolve_data_dir` does.

    Returns
    -------
    CrossValidation

    Raises
    ------
    InputFormatError
        The store's model cannot run here (an external model: use ``lse-select`` on its
        ensemble with :func:`lsegeo.regionalize.selection.held_out_selection` instead).
    """
    from lsegeo.io.stores import root_attrs
    from lsegeo.models.protocol import is_external
    from lsegeo.models.registry import get_model

    settings = settings or RegionalizeSettings()
    model = str(root_attrs(store).get("lsegeo_model", ""))
    if is_external(get_model(model)):
        raise InputFormatError(str(store), None, f"model {model!r} runs outside lsegeo, so proposed sets cannot be run "
                                "here")
    methods = list(dict.fromkeys(["default", *(methods or METHODS.names())]))
    for m in methods:
        METHODS.check(m)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    training = load_training(store, basins_store, objective=settings.objective, period=settings.period,
                             attributes=settings_attributes(settings), basins=basins, gpkg=camels_polygons(data_dir))
    report = settings.report_objective
    objectives = list(dict.fromkeys([report, settings.objective]))
    per_scheme = []
    trained_on = training_digest(training)
    for scheme in schemes:
        per_scheme.append(_one_scheme(scheme, training, Path(basins_store), out / scheme, methods, settings,
                                      objectives, client, progress, seed, data_dir, trained_on))
    scores = xr.concat(per_scheme, dim="scheme")
    cal = np.column_stack([training.calibrated_scores[f"{report}/{p}"].to_numpy() for p in scores["period"].values])
    scores["calibrated"] = (("basin", "period"), cal, {"long_name": f"{report} of the basin's own calibration"})
    scores.attrs.update(report_objective=report, objective=settings.objective, period=settings.period,
                        store=str(store))
    return CrossValidation(scores=scores, table=summary_table(scores))


def settings_attributes(settings: RegionalizeSettings) -> list[str] | None:
    """The emulator's attributes of a regionalization's settings (None: the study's 27)."""
    return list(settings.attributes) if settings.attributes else None


def _member_layout(point: np.ndarray, samples: Mapping[str, np.ndarray], methods: Sequence[str],
                   default: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs' members and each method's group of them.

    A point method is one member (its point estimate, ``point[:, j]``); a mean-response method is
    its K samples (``samples[m]``, ``(basin, K, param)``, NaN where a fold gave fewer). A member
    with no set runs the default set and belongs to no group.

    Returns
    -------
    params : numpy.ndarray
        ``(basin, member, param)``.
    groups : numpy.ndarray
        ``(basin, method, member)`` bool.
    """
    n, _, p = point.shape
    blocks, owner = [], []
    for j, m in enumerate(methods):
        block = samples[m] if m in samples else point[:, j:j + 1]
        blocks.append(block)
        owner.extend([j] * block.shape[1])
    params = np.concatenate(blocks, axis=1)
    empty = ~np.isfinite(params).all(axis=2)
    params[empty] = default
    groups = np.zeros((n, len(methods), params.shape[1]), dtype=bool)
    for c, j in enumerate(owner):
        groups[:, j, c] = ~empty[:, c]
    return params, groups


def _by_basin(parts: list, n: int, p: int) -> np.ndarray:
    """``(n, K, p)`` samples of every basin from the folds' ``(rows, samples)``; NaN where a fold gave fewer."""
    out = np.full((n, max(s.shape[1] for _, s in parts), p), np.nan)
    for rows, sets in parts:
        out[rows, :sets.shape[1]] = sets
    return out


def _one_scheme(scheme: str, training: Training, basins_store: Path, folder: Path, methods: list[str],
                settings: RegionalizeSettings, objectives: list[str], client: Any, progress: bool,
                seed: int, data_dir: str | Path | None, trained_on: str) -> xr.Dataset:
    from lsegeo.io.stores import open_store, root_attrs
    from lsegeo.periods import periods_from_json

    folder.mkdir(parents=True, exist_ok=True)
    attrs = open_store(basins_store, "attributes")
    members = training.basins
    clusters = None
    if scheme == "flood_cluster":
        from lsegeo.regionalize.folds import read_flood_clusters

        clusters = read_flood_clusters(data_dir=data_dir)
        members = [b for b in training.basins if b in clusters]
        if len(members) < len(training.basins):
            logger.info("flood_cluster: %d of %d basins have no flood cluster and are left out",
                        len(training.basins) - len(members), len(training.basins))
    folds = make_folds(scheme, members, seed=seed, attributes=attrs, flood_clusters=clusters)
    space = training.space
    n, p = len(training.basins), len(space)
    pos = {b: i for i, b in enumerate(training.basins)}
    point = np.broadcast_to(space.default, (n, len(methods), p)).copy()
    samples: dict[str, list] = {}                        # mean-response methods: (rows, (rows, K, param)) per fold
    predicted = np.full((len(methods), n), np.nan)
    spread = np.full((len(methods), n), np.nan)
    seconds = np.zeros(len(methods))
    applicability = np.full(n, np.nan)
    fold_of = np.full(n, -1)
    for k, (train, test) in enumerate(folds):
        if not test:
            continue
        ck = folder / f"fold_{k}.npz"
        got: dict[str, np.ndarray] = {}
        if ck.exists():
            got = dict(np.load(ck, allow_pickle=False))
            if sorted(map(str, got["basins"])) != sorted(test) or str(got.get("training", "")) != trained_on:
                got = {}
            for m in {key.split("/")[0] for key in got if "/" in key}:
                if str(got.get(f"{m}/settings", "")) != _method_digest(settings, m):
                    got = {key: v for key, v in got.items() if not key.startswith(f"{m}/")}
        if not all(f"{m}/params" in got for m in methods):
            logger.info("%s fold %d/%d (%s): %d training, %d held-out basins", scheme, k + 1, folds.n_folds,
                        folds.labels[k], len(train), len(test))
            got = _fold_proposals(training, train, test, methods, settings, client, done=got)
            got["training"] = np.array(trained_on)
            _atomic_savez(ck, **got)
        rows = np.array([pos[str(b)] for b in got["basins"]], dtype=np.int64)
        fold_of[rows] = k
        if "applicability" in got:
            applicability[rows] = got["applicability"]
        for j, m in enumerate(methods):
            point[rows, j] = got[f"{m}/params"]
            if str(got.get(f"{m}/response", "point")) == "mean":
                samples.setdefault(m, []).append((rows, got[f"{m}/samples"]))
            predicted[j, rows] = to_report_scale(got[f"{m}/predicted"], settings.objective, settings.report_objective)
            spread[j, rows] = got[f"{m}/spread"]
            seconds[j] += float(got[f"{m}/seconds"])
    params, groups = _member_layout(point, {m: _by_basin(parts, n, p) for m, parts in samples.items()}, methods,
                                    space.default)
    scores = _run_sets(folder / "runs.zarr", training, basins_store, params, groups, objectives, client, progress,
                       methods)
    actual = scores[..., objectives.index(settings.report_objective)].transpose(1, 0, 2)   # (method, basin, period)
    actual = np.where(fold_of[None, :, None] >= 0, actual, np.nan)
    coords = {"method": methods, "basin": training.basins,
              "period": [q.name for q in periods_from_json(root_attrs(training.store)["lsegeo_periods"])]}
    return xr.Dataset(
        {"actual": (("method", "basin", "period"), actual,
                    {"long_name": f"{settings.report_objective} of the proposed set in the held-out basin"}),
         "predicted": (("method", "basin"), predicted, {"long_name": f"predicted {settings.report_objective}, "
                                                                      f"{settings.period} period"}),
         "spread": (("method", "basin"), spread, {"long_name": "spread of the emulators' predictions"}),
         "params": (("basin", "method", "param"), point, {"long_name": "point estimate (sample 0) of each method"}),
         "fold": ("basin", fold_of),
         "applicability": ("basin", applicability, {"long_name": "distance to the fold's training basins in "
                                                                  "standardised attribute space"}),
         "seconds": ("method", seconds, {"units": "s", "long_name": "method time summed over folds"})},
        coords={**coords, "param": space.names}).expand_dims(scheme=[scheme])


def summary_table(scores: xr.Dataset, n_resamples: int = 2000) -> pd.DataFrame:
    """Distribution figures per scheme, method and period (module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns ``scheme, method, period, n, median, median_lo, median_hi, q25, q75,
        better_than_default, gap_closure, calibrated_median, default_median, predicted_median``
        (NaN where no held-out basin has a score).
    """
    from lsegeo.calibration.comparison import bootstrap_median

    rows = []
    for scheme in scores["scheme"].values:
        s = scores.sel(scheme=scheme)
        for period in s["period"].values:
            default = s["actual"].sel({"method": "default", "period": period}).values
            cal = s["calibrated"].sel(period=period).values
            for method in s["method"].values:
                x = s["actual"].sel({"method": method, "period": period}).values
                ok = np.isfinite(x) & np.isfinite(default) & np.isfinite(cal)
                row = {"scheme": str(scheme), "method": str(method), "period": str(period), "n": int(ok.sum())}
                if ok.any():
                    med, lo, hi = bootstrap_median(x[ok], n_resamples=n_resamples)
                    d_med, c_med = float(np.median(default[ok])), float(np.median(cal[ok]))
                    pred = s["predicted"].sel({"method": method}).values[ok]
                    row.update(median=med, median_lo=lo, median_hi=hi, q25=float(np.percentile(x[ok], 25)),
                               q75=float(np.percentile(x[ok], 75)),
                               better_than_default=float(np.mean(x[ok] > default[ok])),
                               gap_closure=(med - d_med) / (c_med - d_med) if c_med != d_med else np.nan,
                               calibrated_median=c_med, default_median=d_med,
                               predicted_median=float(np.median(pred[np.isfinite(pred)]))
                               if np.isfinite(pred).any() else np.nan)
                rows.append(row)
    cols = ["scheme", "method", "period", "n", "median", "median_lo", "median_hi", "q25", "q75",
            "better_than_default", "gap_closure", "calibrated_median", "default_median", "predicted_median"]
    return pd.DataFrame(rows).reindex(columns=cols)


def format_table(table: pd.DataFrame, objective: str = "KGE'") -> str:
    """The summary table as Markdown, one row per scheme and method, both periods side by side."""
    periods = list(dict.fromkeys(table["period"]))
    head = ["scheme", "method"]
    for p in periods:
        head += [f"{p} median {objective} [95% CI]", f"{p} IQR", f"{p} > default", f"{p} gap closure"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (scheme, method), g in table.groupby(["scheme", "method"], sort=False):
        cells = [scheme, method]
        for p in periods:
            r = g[g["period"] == p].iloc[0]
            cells += [f"{r['median']:.3f} [{r['median_lo']:.3f}, {r['median_hi']:.3f}]",
                      f"{r['q25']:.3f}-{r['q75']:.3f}", f"{100 * r['better_than_default']:.0f}%",
                      f"{r['gap_closure']:.2f}" if np.isfinite(r["gap_closure"]) else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _held_out(scores: xr.Dataset, scheme: str, method: str,
              basins: Sequence[str] | None = None) -> tuple[xr.Dataset, str, np.ndarray, np.ndarray]:
    """A scheme's scores (of ``basins``), the objective's period, and a method's predicted and actual scores there."""
    s = scores.sel(scheme=scheme)
    if basins is not None:
        s = s.sel(basin=list(basins))
    period = scores.attrs.get("period", "calibration")
    return (s, period, s["predicted"].sel({"method": method}).values,
            s["actual"].sel({"method": method, "period": period}).values)


def fit_intervals(scores: xr.Dataset, scheme: str, method: str, *, confidence: float = 0.9,
                  basins: Sequence[str] | None = None, groups: Mapping[str, str] | None = None) -> Any:
    """Split-conformal score intervals calibrated on a cross-validation's held-out residuals.

    Parameters
    ----------
    scores : xarray.Dataset
        :attr:`CrossValidation.scores`.
    scheme, method : str
        Whose held-out predictions and actual scores (on the objective's period) calibrate.
    confidence : float
    basins : sequence of str, optional
        Calibrate on these basins only (default all with a fold).
    groups : mapping of str to str, optional
        Gauge id -> group (e.g. :func:`~lsegeo.regionalize.folds.pur_regions`): Mondrian
        intervals, one threshold per group from its own basins' residuals, so that the coverage
        holds within every group (a group with too few basins takes the pooled threshold).

    Returns
    -------
    lsegeo.regionalize.conformal.ScoreIntervals
        Normalised by the applicability distance (wider where a target is far from the
        training basins).
    """
    from lsegeo.regionalize.conformal import ScoreIntervals

    s, _, pred, actual = _held_out(scores, scheme, method, basins)
    diff = s["applicability"].values
    normalized = bool(np.isfinite(diff).any())
    labels = None if groups is None else [groups.get(str(b), "") for b in s["basin"].values]
    return ScoreIntervals(confidence=confidence, normalized=normalized, y_max=1.0).fit(
        pred, actual, difficulty=diff if normalized else None, groups=labels)


def prediction_skill(scores: xr.Dataset, scheme: str, method: str) -> dict[str, Any]:
    """How well the predicted score of a method's sets matched their real runs on held-out basins.

    The emulator's skill where a product uses it: for every basin, the score the emulators
    predicted for the set proposed with that basin held out, against the score the set achieved
    when run (on the objective's period, on the report objective's scale).

    Parameters
    ----------
    scores : xarray.Dataset
        :attr:`CrossValidation.scores`.
    scheme, method : str

    Returns
    -------
    dict
        ``scheme``, ``method``, ``period``, ``n`` (basins with both values), ``pearson_r``,
        ``spearman_r``, ``rmse``, ``bias_predicted_minus_actual`` (mean of predicted - actual:
        positive where the emulator promises more than the runs give) and ``median_abs_error``;
        NaN figures where fewer than 3 basins have both.
    """
    from scipy.stats import pearsonr, spearmanr

    _, period, pred, actual = _held_out(scores, scheme, method)
    ok = np.isfinite(pred) & np.isfinite(actual)
    out: dict[str, Any] = {"scheme": scheme, "method": method, "period": period, "n": int(ok.sum())}
    p, a = pred[ok], actual[ok]
    enough = ok.sum() >= 3 and np.ptp(p) > 0 and np.ptp(a) > 0
    out.update(pearson_r=float(pearsonr(p, a)[0]) if enough else float("nan"),
               spearman_r=float(spearmanr(p, a)[0]) if enough else float("nan"),
               rmse=float(np.sqrt(np.mean((p - a) ** 2))) if ok.any() else float("nan"),
               bias_predicted_minus_actual=float(np.mean(p - a)) if ok.any() else float("nan"),
               median_abs_error=float(np.median(np.abs(p - a))) if ok.any() else float("nan"))
    return out


def interval_coverage(scores: xr.Dataset, scheme: str, method: str, *, confidence: float = 0.9,
                      groups: Mapping[str, str] | None = None, mondrian: bool = False) -> dict[str, Any]:
    """Coverage of the score intervals on held-out folds.

    For each fold, intervals are calibrated on the other folds' held-out residuals
    (:func:`fit_intervals`) and applied to the fold's basins; the share of actual scores inside
    is reported overall and per group (e.g. the PUR region of each basin). With ``mondrian``
    the intervals are calibrated per group too (a group held out whole, as in the ``pur``
    scheme, takes the pooled threshold).

    Returns
    -------
    dict
        As :func:`lsegeo.regionalize.conformal.coverage`, plus ``confidence`` and ``mondrian``
        (whether the intervals were calibrated per group).
    """
    from lsegeo.regionalize.conformal import coverage

    s, _, pred, actual = _held_out(scores, scheme, method)
    basins = [str(b) for b in s["basin"].values]
    fold = s["fold"].values
    lower, upper = np.full(len(basins), np.nan), np.full(len(basins), np.nan)
    diff = s["applicability"].values
    labels = None if groups is None else np.array([groups.get(b, "") for b in basins], dtype=object)
    for k in np.unique(fold[fold >= 0]):
        train = [b for b, f in zip(basins, fold, strict=True) if f >= 0 and f != k]
        iv = fit_intervals(scores, scheme, method, confidence=confidence, basins=train,
                           groups=groups if mondrian else None)
        rows = np.flatnonzero(fold == k)
        lower[rows], upper[rows] = iv.interval(pred[rows], difficulty=diff[rows] if iv.is_normalized else None,
                                               groups=labels[rows] if mondrian and labels is not None else None)
    out = coverage(lower, upper, actual, groups=labels)
    out.update(confidence=confidence, mondrian=bool(mondrian and groups is not None))
    return out
