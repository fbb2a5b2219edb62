"""Regionalization methods: parameters for targets (basins, cells) from their attributes alone.

Each method is an entry of :data:`METHODS`, a function ``method(context, targets) -> Proposed``
that sees only the training basins (:class:`~lsegeo.regionalize.training.Training`, held in a
:class:`Context` with the emulators fitted on them) and the targets' attributes and locations:

===================  ===========================================================================
``default``          the model's default set (the baseline every figure is measured against)
``donor-nearest``    the calibrated set of the spatially nearest training basin (centroid
                     distance); its k nearest donors fill the samples
``donor-similar``    the calibrated sets of the k most similar training basins in standardised
                     attribute space (Oudin et al. 2008); the point estimate is the nearest
                     donor's or the one with the best mean predicted score over the k donor
                     basins, or the mean of the k donors' simulated flows
                     (``regionalize.donors.combine``)
``donor-ensemble``   the mean simulated flow of the calibrated sets of the ``near`` spatially
                     nearest and the ``similar`` most similar training basins (output
                     averaging, Oudin et al. 2008; McIntyre et al. 2005)
``lse-select``       among the sets simulated in the training basins (the shared design and every
                     basin's calibrated set), the one the emulator ranks best for the target;
                     records the ensemble member (works for models that cannot run here, e.g.
                     the ingested CTSM ensemble)
``lse-optimise``     a genetic algorithm on the emulator for each target (Tang, Wood & Swenson
                     2025, section 2.5) inside the envelope of its donors' calibrated sets, all
                     targets batched per emulator call, on dask when a client is given
                     (:mod:`lsegeo.regionalize.search`)
``lse-amortised``    a network attributes -> parameters trained through a frozen differentiable
                     emulator ensemble (:mod:`lsegeo.regionalize.amortised`)
===================  ===========================================================================

:func:`regionalize` runs one method and adds what every method shares: the parameter values,
the emulators' predicted score of every set (mean over the emulators) and their spread.

A method predicts in one of two ways (:data:`RESPONSES`): ``"point"``, the model run with sample 0
(every method by default), or ``"mean"``, the mean of the simulated flows of all K samples
(output averaging: ``donor-ensemble``, ``donor-similar`` with ``combine: mean_response``). A
product records which in ``lsegeo_response``; the cross-validation and ``lsegeo evaluate`` score
what it says.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lsegeo.errors import InputFormatError
from lsegeo.regionalize.settings import RegionalizeSettings
from lsegeo.regionalize.training import Training
from lsegeo.registry import Registry

__all__ = ["METHODS", "RESPONSES", "Targets", "Context", "Proposed", "RegionalResult", "regionalize",
           "with_locations"]

#: how a regionalization's K samples predict: the run of sample 0, or the mean of the runs of all K
RESPONSES = ("point", "mean")

logger = logging.getLogger(__name__)

#: rows per emulator call when predicting scores (:meth:`Context.predict`)
PREDICT_BLOCK = 200_000


@dataclass
class Targets:
    """What a method may know of its targets (a :class:`~lsegeo.regionalize.domains.Domain` has the same fields).

    Attributes
    ----------
    targets : list of str
        Target ids (gauge ids, table ids, ``cell<k>``).
    attributes : pandas.DataFrame
        Raw attributes, one row per target in that order.
    lat, lon : numpy.ndarray
        ``(n,)`` locations, degrees.
    """

    targets: list[str]
    attributes: pd.DataFrame
    lat: np.ndarray
    lon: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class Proposed:
    """What a method returns: K sets per target in the unit cube, best first.

    Attributes
    ----------
    unit : numpy.ndarray
        ``(n, K, n_params)``.
    member : numpy.ndarray, optional
        ``(n,)`` ensemble member of the point estimate (``lse-select``).
    donor : numpy.ndarray, optional
        ``(n,)`` gauge id of the donor of the point estimate (donor methods).
    info : dict
        Method details for the product's metadata.
    params : numpy.ndarray, optional
        ``(n, K, n_params)`` the same sets in model units, when the method takes them as stored
        (``lse-select``): the product then carries the stored values, not their round trip
        through the unit cube (clipped into the space's bounds, which a stored value can miss by
        a rounding).
    response : {"point", "mean"}
        How the samples predict (:data:`RESPONSES`).
    donors : numpy.ndarray, optional
        ``(n, K)`` gauge ids of the donor of every sample (donor methods).
    """

    unit: np.ndarray
    member: np.ndarray | None = None
    donor: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    params: np.ndarray | None = None
    response: str = "point"
    donors: np.ndarray | None = None


@dataclass
class Context:
    """The training basins, the settings and the emulators fitted on those basins only.

    Attributes
    ----------
    training : Training
    settings : RegionalizeSettings
    emulators : list
        Large-sample emulators fitted on ``training.ts`` (may be empty for ``default`` and
        ``donor-nearest``, which then have no predicted scores).
    client : distributed.Client, optional
        Where ``lse-optimise`` fans out.
    checkpoint : Checkpoint, optional
        Where finished chunks of ``lse-optimise`` are kept
        (:class:`lsegeo.regionalize.checkpoint.Checkpoint`), so that a job started again after
        an interruption does not compute them again.
    """

    training: Training
    settings: RegionalizeSettings
    emulators: list[Any] = field(default_factory=list)
    client: Any = None
    checkpoint: Any = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def sense(self) -> str:
        """``"max"`` or ``"min"``: the orientation of the objective."""
        from lsegeo.metrics.objectives import get_objective

        return get_objective(self.settings.objective).sense

    def encode(self, attributes: pd.DataFrame) -> np.ndarray:
        """Encoded attribute rows of targets, as the emulators encode their training basins.

        A class of a categorical attribute that no training basin has (a land cover found only
        among the targets) is encoded as missing, with a warning that names it and counts its
        targets.

        Raises
        ------
        InputFormatError
            The targets lack attributes the emulator was trained on (all of them named).
        """
        em = self.require_emulators("encoding attributes")
        enc = em[0].encoder
        missing = [n for n in enc.names if _column_name(attributes, n) is None]
        if missing:
            raise InputFormatError("target attributes", None,
                                   f"the targets lack attribute(s) {missing} that the emulator was trained on "
                                   f"(it needs {', '.join(enc.names)})")
        for name, classes in enc.unseen_classes(attributes).items():
            logger.warning("attribute %r: %d target(s) have classes no training basin has (%s); they are encoded "
                           "as missing", name, sum(classes.values()),
                           ", ".join(f"{c!r}: {n}" for c, n in classes.items()))
        return enc.transform(attributes)

    def rows(self, targets: Any) -> np.ndarray:
        """Encoded attribute rows of targets, with their locations as ``lat``/``lon`` (alias ``gauge_lat/lon``).

        An emulator may use the location as an attribute (``regionalize.attributes`` with
        ``gauge_lat``, ``gauge_lon``); grid cells and table rows have it as their coordinates.
        """
        return self.encode(with_locations(targets))

    def require_emulators(self, what: str) -> list[Any]:
        """The emulators; :class:`InputFormatError` naming ``what`` needed them when there are none."""
        if not self.emulators:
            raise InputFormatError("regionalization", None, f"{what} needs a fitted emulator; none was given")
        return self.emulators

    def predict(self, attr_rows: np.ndarray, u: np.ndarray, *, block: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the emulators of the objective's prediction.

        Parameters
        ----------
        attr_rows : numpy.ndarray
            ``(n, n_attr)`` encoded attributes (or one row).
        u : numpy.ndarray
            ``(n, n_params)`` unit-cube sets.
        block : int, optional
            Rows per emulator call; default :data:`PREDICT_BLOCK`, so that the features built for
            one call stay bounded (about 80 MiB for 52 columns) however many targets x sets there
            are. The blocks give what one call gives.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``(n,)`` each; the spread is 0 with one emulator.
        """
        ems = self.require_emulators("predicting scores")
        attr_rows, u = np.asarray(attr_rows), np.atleast_2d(np.asarray(u))
        n = len(u)
        rows = np.broadcast_to(attr_rows, (n, attr_rows.shape[0])) if attr_rows.ndim == 1 else attr_rows
        if rows.shape[0] != n:
            raise ValueError(f"attr_rows must have one row per set ({n}) or be one row, got shape {attr_rows.shape}")
        mean, std = np.empty(n), np.empty(n)
        block = int(block) if block and block > 0 else PREDICT_BLOCK
        for a in range(0, n, block):
            b = min(n, a + block)
            preds = np.stack([em.predict_features(rows[a:b], u[a:b])[:, 0] for em in ems])
            mean[a:b], std[a:b] = preds.mean(axis=0), preds.std(axis=0)
        return mean, std


def with_locations(targets: Any) -> pd.DataFrame:
    """The targets' attributes with their locations as columns ``lat`` and ``lon`` (added where absent)."""
    frame = targets.attributes
    if "lat" not in frame.columns or "lon" not in frame.columns:
        frame = frame.assign(lat=np.asarray(targets.lat, dtype=np.float64),
                             lon=np.asarray(targets.lon, dtype=np.float64))
    return frame


def _column_name(frame: pd.DataFrame, name: str) -> str | None:
    from lsegeo.emulators.features import ATTRIBUTE_ALIASES

    for key in (name, ATTRIBUTE_ALIASES.get(name)):
        if key is not None and key in frame.columns:
            return key
    return None


class _MeanEmulator:
    """The emulators of a context seen as one (mean prediction), for :func:`select_best`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.target_names = [ctx.settings.objective]
        self.target_senses = [ctx.sense]

    def predict_features(self, attr_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self.ctx.predict(attr_rows, u)[0][:, None]


# -- methods ------------------------------------------------------------------------------------
def default_sets(ctx: Context, targets: Targets) -> Proposed:
    """The model's default set for every target (one sample)."""
    space = ctx.training.space
    u = np.broadcast_to(space.to_unit(space.default), (len(targets), 1, len(space))).copy()
    return Proposed(u, info={"description": "the model's default parameter set"})


def _donor_sets(ctx: Context, idx: np.ndarray) -> np.ndarray:
    """``(n, k, n_params)`` unit-cube calibrated sets of donors ``idx`` ``(n, k)``."""
    return ctx.training.space.to_unit(ctx.training.calibrated)[idx]


def donor_nearest(ctx: Context, targets: Targets) -> Proposed:
    """The calibrated sets of the spatially nearest training basins, nearest first."""
    from lsegeo.regionalize.donors import nearest_donors

    tr = ctx.training
    idx, dist = nearest_donors(tr.lat, tr.lon, targets.lat, targets.lon, k=ctx.settings.donors.k)
    ids = np.array(tr.basins, dtype=object)[idx]
    return Proposed(_donor_sets(ctx, idx), donor=ids[:, 0], donors=ids,
                    info={"description": "calibrated set of the nearest calibrated basin (centroid distance)",
                          "median_distance_km": float(np.median(dist[:, 0]))})


def donor_similar(ctx: Context, targets: Targets) -> Proposed:
    """The calibrated sets of the most similar training basins (standardised attribute space)."""
    from lsegeo.emulators.features import STUDY_ATTRIBUTES
    from lsegeo.regionalize.donors import similar_donors

    tr, ds = ctx.training, ctx.settings.donors
    names = list(ctx.emulators[0].encoder.names) if ctx.emulators else list(STUDY_ATTRIBUTES)
    idx, _ = similar_donors(tr.attributes, targets.attributes, names, k=ds.k)
    sets = _donor_sets(ctx, idx)
    combine = ds.combine
    if combine == "best_mean" and not (ctx.emulators and idx.shape[1] > 1):
        combine = "nearest"
    if combine == "best_mean":
        sets, idx = _best_mean_first(ctx, sets, idx)
    ids = np.array(tr.basins, dtype=object)[idx]
    response = "mean" if combine == "mean_response" else "point"
    return Proposed(sets, donor=ids[:, 0], donors=ids, response=response,
                    info={"description": f"calibrated sets of the {idx.shape[1]} most similar calibrated basins "
                                         f"(standardised attributes); prediction: {combine}",
                          "attributes": names, "combine": combine})


def donor_ensemble(ctx: Context, targets: Targets) -> Proposed:
    """The calibrated sets of the nearest and of the most similar training basins; their mean flow predicts.

    Sample order: the ``donors.near`` spatially nearest training basins, nearest first, then the
    ``donors.similar`` most similar of the others (standardised attributes, the emulator's when
    there is one, else the study's 27), most similar first. ``K = near + similar`` (fewer when
    there are fewer training basins).
    """
    from lsegeo.emulators.features import STUDY_ATTRIBUTES
    from lsegeo.regionalize.donors import nearest_donors, similar_donors

    tr, ds = ctx.training, ctx.settings.donors
    n_train = len(tr)
    near_k, sim_k = min(ds.near, n_train), min(ds.similar, n_train - min(ds.near, n_train))
    names = list(ctx.emulators[0].encoder.names) if ctx.emulators else list(STUDY_ATTRIBUTES)
    parts = []
    if near_k:
        parts.append(nearest_donors(tr.lat, tr.lon, targets.lat, targets.lon, k=near_k)[0])
    if sim_k:
        ranked, _ = similar_donors(tr.attributes, targets.attributes, names, k=near_k + sim_k)
        chosen = parts[0] if parts else np.empty((len(targets), 0), dtype=np.int64)
        others = np.empty((len(targets), sim_k), dtype=np.int64)
        for i in range(len(targets)):
            others[i] = [d for d in ranked[i] if d not in set(chosen[i].tolist())][:sim_k]
        parts.append(others)
    idx = np.concatenate(parts, axis=1)
    ids = np.array(tr.basins, dtype=object)[idx]
    return Proposed(_donor_sets(ctx, idx), donor=ids[:, 0], donors=ids, response="mean",
                    info={"description": f"mean simulated flow of the calibrated sets of the {near_k} nearest and "
                                         f"the {sim_k} most similar calibrated basins (output averaging)",
                          "near": near_k, "similar": sim_k, "attributes": names})


def _best_mean_first(ctx: Context, sets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder each target's k donor sets by their mean predicted score over the k donor basins."""
    n, k, p = sets.shape
    donor_rows = ctx.encode(ctx.training.attributes)
    mean = np.empty((n, k))
    step = max(1, ctx.settings.chunk_targets // (k * k))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        m = hi - lo
        u = np.broadcast_to(sets[lo:hi, :, None, :], (m, k, k, p))              # [target, set, basin, param]
        a = donor_rows[np.broadcast_to(idx[lo:hi, None, :], (m, k, k))]          # [target, set, basin, attr]
        pred = ctx.predict(a.reshape(-1, a.shape[-1]), u.reshape(-1, p))[0]
        mean[lo:hi] = pred.reshape(m, k, k).mean(axis=2)
    order = np.argsort(-mean if ctx.sense == "max" else mean, axis=1, kind="stable")
    return np.take_along_axis(sets, order[:, :, None], axis=1), np.take_along_axis(idx, order, axis=1)


def _candidate_pool(ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit-cube sets simulated in the training basins that ``lse-select`` ranks, and where each comes from.

    The sets shared by every basin (the design of iteration 0, e.g. the 201 CTSM trials) and each
    training basin's calibrated set. Returns ``unit, member, params, basin``: ``member`` is the
    design's member (-1 for a calibrated set) and ``basin`` the gauge id whose calibrated set it
    is ("" for a design member); a calibrated set equal to a design member is that member.
    """
    from lsegeo.conventions import ITERATION
    from lsegeo.ensembles.store import open_ensemble
    from lsegeo.regionalize.selection import candidate_sets

    tr = ctx.training
    if "candidates" in ctx.cache:
        return ctx.cache["candidates"]
    ens = open_ensemble(tr.store)
    cands = candidate_sets(ens, basins=tr.basins, objective=tr.objective, period=tr.period)
    if ITERATION in ens:
        it = ens[ITERATION].values
        first = np.isin(cands.member, np.flatnonzero(it == it.min()))
        unit, member, params = cands.unit[first], cands.member[first], cands.params[first]
    else:
        unit, member, params = cands.unit, cands.member, cands.params
    cal = tr.space.to_unit(tr.calibrated)
    unit_all = np.vstack([unit, cal])
    member_all = np.concatenate([member, np.full(len(cal), -1)])
    params_all = np.vstack([params, tr.calibrated])
    basin_all = np.array([""] * len(member) + [str(b) for b in tr.basins], dtype=object)
    _, keep = np.unique(params_all, axis=0, return_index=True)
    keep = np.sort(keep)
    ctx.cache["candidates"] = (unit_all[keep], member_all[keep], params_all[keep], basin_all[keep])
    return ctx.cache["candidates"]


def lse_select_sets(ctx: Context, targets: Targets) -> Proposed:
    """The K sets, among those simulated in the training basins, that the emulator ranks best."""
    from lsegeo.regionalize.selection import rank_candidates

    rows = ctx.rows(targets)
    unit, member, params, basin = _candidate_pool(ctx)
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    order = rank_candidates(_MeanEmulator(ctx), uniq, unit, ctx.settings.n_samples)[0][inverse]
    return Proposed(unit[order], member=member[order[:, 0]], params=params[order], donor=basin[order[:, 0]],
                    donors=basin[order],
                    info={"description": "best-ranked simulated set of the training basins (selected_member: "
                                         "a design member; donor_basin: the basin whose calibrated set it is)",
                          "candidates": len(unit)})


def _differentiable_emulators(ctx: Context) -> list[Any]:
    """Emulators with the ``torch_mlp`` backend on the context's training rows (fitted once per context)."""
    from dataclasses import replace

    if "differentiable" not in ctx.cache:
        from lsegeo.regionalize.training import fit_emulators

        es = ctx.settings.emulator
        if es.backend == "torch_mlp" and ctx.emulators:
            ctx.cache["differentiable"] = ctx.emulators
        else:
            options = dict(ctx.settings.amortised.backend_options)
            torch_settings = replace(ctx.settings, emulator=replace(es, backend="torch_mlp", backend_options=options))
            n = max(ctx.settings.amortised.n_emulators, 1)
            ctx.cache["differentiable"] = fit_emulators(ctx.training.ts, torch_settings, n)
    return ctx.cache["differentiable"]


def lse_amortised(ctx: Context, targets: Targets) -> Proposed:
    """The attributes -> parameters network trained through frozen differentiable emulators."""
    from lsegeo.regionalize.amortised import AmortisedRegionalizer

    a = ctx.settings.amortised
    if "amortised" not in ctx.cache:
        ems = _differentiable_emulators(ctx)
        train_rows = ems[0].encode(ctx.training.attributes)
        ctx.cache["amortised"] = AmortisedRegionalizer(hidden=a.hidden, epochs=a.epochs, penalty=a.penalty,
                                                       seed=a.seed).fit(ems, train_rows)
    net = ctx.cache["amortised"]
    rows = _differentiable_emulators(ctx)[0].encode(with_locations(targets))
    t0 = time.perf_counter()
    u = np.clip(net.predict(rows), 0.0, 1.0)[:, None, :]
    return Proposed(u, info={"description": "attributes -> parameters network trained through a frozen "
                                            "differentiable emulator ensemble",
                             "predict_seconds": time.perf_counter() - t0, "hidden": list(a.hidden),
                             "epochs": a.epochs, "penalty": a.penalty})


#: Regionalization methods by name (module docstring).
METHODS: Registry[Callable[[Context, Targets], Proposed]] = Registry(
    "regionalization method",
    {"default": "lsegeo.regionalize.methods:default_sets",
     "donor-nearest": "lsegeo.regionalize.methods:donor_nearest",
     "donor-similar": "lsegeo.regionalize.methods:donor_similar",
     "donor-ensemble": "lsegeo.regionalize.methods:donor_ensemble",
     "lse-select": "lsegeo.regionalize.methods:lse_select_sets",
     "lse-optimise": "lsegeo.regionalize.search:lse_optimise",
     "lse-amortised": "lsegeo.regionalize.methods:lse_amortised"},
    extras={"lse-amortised": "torch"})


@dataclass
class RegionalResult:
    """Parameters of every target by one method, with the predicted score of each set.

    Attributes
    ----------
    method : str
    targets : list of str
    unit, params : numpy.ndarray
        ``(n, K, n_params)`` in the unit cube and in model units; sample 0 is the point estimate.
    predicted : numpy.ndarray
        ``(n, K)`` mean emulator prediction of the objective (NaN without emulators).
    spread : numpy.ndarray
        ``(n,)`` standard deviation over the emulators of sample 0's prediction.
    param_names : list of str
    member, donor, donors : numpy.ndarray or None
        As in :class:`Proposed`.
    seconds : float
        Time of the method (prediction of scores excluded).
    info : dict
    response : {"point", "mean"}
        How the samples predict (:data:`RESPONSES`).
    """

    method: str
    targets: list[str]
    unit: np.ndarray
    params: np.ndarray
    predicted: np.ndarray
    spread: np.ndarray
    param_names: list[str]
    member: np.ndarray | None
    donor: np.ndarray | None
    seconds: float
    info: dict[str, Any]
    response: str = "point"
    donors: np.ndarray | None = None

    @property
    def point(self) -> np.ndarray:
        """``(n, n_params)`` the point estimates in model units."""
        return self.params[:, 0]

    @property
    def predicted_score(self) -> np.ndarray:
        """``(n,)`` predicted score of what the result predicts with.

        Sample 0's, or for a mean response the mean of the samples' predicted scores, on the
        objective's scale (nKGE' by default). The emulator does not predict the score of an
        averaged flow; the score intervals, calibrated on cross-validation residuals of the mean
        response, account for the difference.
        """
        if self.response == "mean":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a target without predictions stays NaN
                return np.nanmean(self.predicted, axis=1)
        return self.predicted[:, 0]


def regionalize(ctx: Context, targets: Targets, method: str | None = None) -> RegionalResult:
    """Run one regionalization method on targets and predict the score of every set.

    Parameters
    ----------
    ctx : Context
    targets : Targets or Domain
    method : str, optional
        A name of :data:`METHODS`; default ``ctx.settings.method``.

    Returns
    -------
    RegionalResult

    Raises
    ------
    lsegeo.errors.UnknownNameError
        The method is not registered.
    InputFormatError
        The targets lack an attribute the emulator needs, or there are no targets.
    """
    name = method or ctx.settings.method
    fn = METHODS.get(name)
    if len(targets) == 0:
        raise InputFormatError("targets", None, "there are no targets to regionalize")
    t0 = time.perf_counter()
    proposed = fn(ctx, targets)
    seconds = time.perf_counter() - t0
    n, k, p = proposed.unit.shape
    space = ctx.training.space
    if proposed.params is not None:
        params = np.asarray(proposed.params, dtype=np.float64).reshape(n, k, p)
    else:
        params = space.from_unit(proposed.unit.reshape(-1, p)).reshape(n, k, p)
    # inside the bounds: exp(log(bound)) of a log-scale parameter can miss its bound by a rounding, and so can
    # a stored set (the CTSM ensemble's kmax 2.359075e-09 against its sampled lower bound 2.3590750000000006e-09)
    params = np.clip(params, space.lower, space.upper)
    predicted, spread = np.full((n, k), np.nan), np.full(n, np.nan)
    if ctx.emulators:
        rows = ctx.rows(targets)
        mean, std = ctx.predict(np.repeat(rows, k, axis=0), proposed.unit.reshape(-1, p))
        predicted, spread = mean.reshape(n, k), std.reshape(n, k)[:, 0]
    logger.info("%s: %d targets x %d sets in %.2f s", name, n, k, seconds)
    return RegionalResult(method=name, targets=[str(t) for t in targets.targets], unit=proposed.unit, params=params,
                          predicted=predicted, spread=spread, param_names=space.names, member=proposed.member,
                          donor=proposed.donor, seconds=seconds, info=proposed.info, response=proposed.response,
                          donors=proposed.donors)
