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
                     basins (``regionalize.donors.combine``)
``lse-select``       among the sets simulated in the training basins (the shared design and every
                     basin's calibrated set), the one the emulator ranks best for the target;
                     records the ensemble member (works for models that cannot run here, e.g.
                     the ingested CTSM ensemble)
``lse-optimise``     a genetic algorithm on the emulator for each target (Tang, Wood & Swenson
                     2025, section 2.5), all targets batched per emulator call; identical
                     attribute rows optimised once; on dask when a client is given
``lse-amortised``    a network attributes -> parameters trained through a frozen differentiable
                     emulator ensemble (:mod:`lsegeo.regionalize.amortised`)
===================  ===========================================================================

:func:`regionalize` runs one method and adds what every method shares: the parameter values,
the emulators' predicted score of every set (mean over the emulators) and their spread.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lsegeo.errors import InputFormatError
from lsegeo.regionalize.settings import RegionalizeSettings
from lsegeo.regionalize.training import Training
from lsegeo.registry import Registry

__all__ = ["METHODS", "Targets", "Context", "Proposed", "RegionalResult", "regionalize", "TargetRows",
           "load_target_rows"]

logger = logging.getLogger(__name__)


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
        (``lse-select``): the product then carries the stored values exactly, not their round
        trip through the unit cube.
    """

    unit: np.ndarray
    member: np.ndarray | None = None
    donor: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    params: np.ndarray | None = None


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
    """

    training: Training
    settings: RegionalizeSettings
    emulators: list[Any] = field(default_factory=list)
    client: Any = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def sense(self) -> str:
        """``"max"`` or ``"min"``: the orientation of the objective."""
        from lsegeo.metrics.objectives import get_objective

        return get_objective(self.settings.objective).sense

    def encode(self, attributes: pd.DataFrame) -> np.ndarray:
        """Encoded attribute rows of targets, as the emulators encode their training basins.

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
        return enc.transform(attributes)

    def require_emulators(self, what: str) -> list[Any]:
        """The emulators; :class:`InputFormatError` naming ``what`` needed them when there are none."""
        if not self.emulators:
            raise InputFormatError("regionalization", None, f"{what} needs a fitted emulator; none was given")
        return self.emulators

    def predict(self, attr_rows: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the emulators of the objective's prediction.

        Parameters
        ----------
        attr_rows : numpy.ndarray
            ``(n, n_attr)`` encoded attributes (or one row).
        u : numpy.ndarray
            ``(n, n_params)`` unit-cube sets.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``(n,)`` each; the spread is 0 with one emulator.
        """
        ems = self.require_emulators("predicting scores")
        preds = np.stack([em.predict_features(attr_rows, u)[:, 0] for em in ems])
        return preds.mean(axis=0), preds.std(axis=0)


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
    donors = np.array(tr.basins, dtype=object)[idx[:, 0]]
    return Proposed(_donor_sets(ctx, idx), donor=donors,
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
    combine = ds.combine if ctx.emulators and idx.shape[1] > 1 else "nearest"
    if combine == "best_mean":
        sets, idx = _best_mean_first(ctx, sets, idx)
    donors = np.array(tr.basins, dtype=object)[idx[:, 0]]
    return Proposed(sets, donor=donors, info={"description": f"calibrated sets of the {idx.shape[1]} most similar "
                                              f"calibrated basins (standardised attributes); point: {combine}",
                                              "attributes": names, "combine": combine})


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


def _candidate_pool(ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-cube sets simulated in the training basins that ``lse-select`` ranks, their member and model values.

    The sets shared by every basin (the design of iteration 0, e.g. the 201 CTSM trials) and each
    training basin's calibrated set.
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
    _, keep = np.unique(params_all, axis=0, return_index=True)
    keep = np.sort(keep)
    ctx.cache["candidates"] = (unit_all[keep], member_all[keep], params_all[keep])
    return ctx.cache["candidates"]


def lse_select_sets(ctx: Context, targets: Targets) -> Proposed:
    """The K sets, among those simulated in the training basins, that the emulator ranks best."""
    from lsegeo.regionalize.selection import select_best

    rows = ctx.encode(targets.attributes)
    unit, member, params = _candidate_pool(ctx)
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    _, pred = select_best(_MeanEmulator(ctx), uniq, unit)
    k = min(ctx.settings.n_samples, len(unit))
    ranked = np.where(np.isfinite(pred), pred, -np.inf if ctx.sense == "max" else np.inf)
    order = np.argsort(-ranked if ctx.sense == "max" else ranked, axis=1, kind="stable")[:, :k][inverse]
    return Proposed(unit[order], member=member[order[:, 0]], params=params[order],
                    info={"description": "best-ranked simulated set of the training basins", "candidates": len(unit)})


class TargetRows:
    """An emulator seen through fixed attribute rows: ``predict(i, u)`` predicts target row ``i``.

    This lets the batched optimiser (:func:`lsegeo.optimise.proposals.propose` and its dask
    fan-out), which addresses basins by index, optimise targets that are not the emulator's
    basins (grid cells, ungauged basins).
    """

    def __init__(self, emulators: list[Any], rows: np.ndarray) -> None:
        self.emulators = emulators
        self.rows = np.asarray(rows, dtype=np.float64)

    def predict(self, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``(n, 1)`` mean prediction of the objective for target rows ``idx`` ``(n,)`` at ``u`` ``(n, n_params)``."""
        a = self.rows[np.asarray(idx, dtype=np.int64)]
        return np.mean([em.predict_features(a, u)[:, :1] for em in self.emulators], axis=0)

    def to_bytes(self) -> bytes:
        """The emulators and rows as bytes, for :func:`load_target_rows` on a dask worker."""
        return pickle.dumps(([em.to_bytes() for em in self.emulators], self.rows), protocol=5)


def load_target_rows(blob: bytes) -> TargetRows:
    """Rebuild a :class:`TargetRows` from :meth:`TargetRows.to_bytes` (on a dask worker)."""
    from lsegeo.emulators import load_bytes

    blobs, rows = pickle.loads(blob)  # noqa: S301 (bytes made by this package in this run)
    return TargetRows([load_bytes(b) for b in blobs], rows)


def _optimise_rows(ctx: Context, rows: np.ndarray, k: int) -> np.ndarray:
    """``(n, k, n_params)`` GA optima on the emulator for attribute rows ``(n, n_attr)``, best first."""
    from lsegeo.optimise.proposals import propose

    o = ctx.settings.optimise
    n_params = len(ctx.training.space)
    kwargs = dict(algorithm="ga", pop_size=o.pop_size, n_gen=o.n_gen, n_restarts=o.n_restarts, seed=o.seed,
                  min_distance=o.min_distance, local_share=0.0, engine="numpy")
    view = TargetRows(ctx.require_emulators("lse-optimise"), rows)
    out = np.empty((len(rows), k, n_params))
    step = max(1, ctx.settings.chunk_targets // max(1, o.pop_size * o.n_restarts // 50))
    for lo in range(0, len(rows), step):
        hi = min(len(rows), lo + step)
        idx = np.arange(lo, hi)
        if ctx.client is not None:
            from lsegeo.optimise.fanout import propose_on_dask

            res = propose_on_dask(ctx.client, view.to_bytes(), load_target_rows, idx, n_params, (ctx.sense,), k,
                                  progress=False, **kwargs)
        else:
            res = propose(view.predict, idx, n_params, (ctx.sense,), k, **kwargs)
        out[lo:hi] = res.u
    return np.clip(out, 0.0, 1.0)


def lse_optimise(ctx: Context, targets: Targets) -> Proposed:
    """A genetic algorithm on the emulator for every distinct attribute row of the targets.

    With more distinct rows than ``optimise.max_rows`` (a grid whose cells have interpolated
    attributes), the GA runs on ``max_rows`` representative rows drawn at random (seeded); each
    target then takes, among the K optima of its 3 nearest representatives in standardised
    attribute space, the K that the emulator ranks best at the target's own attributes.
    """
    from scipy.spatial import cKDTree

    s, o = ctx.settings, ctx.settings.optimise
    rows = ctx.encode(targets.attributes)
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    k = min(s.n_samples, o.pop_size * o.n_restarts)
    info: dict[str, Any] = {"description": "GA optimum on the emulator from the target's attributes",
                            "pop_size": o.pop_size, "n_gen": o.n_gen, "n_restarts": o.n_restarts,
                            "distinct_rows": int(len(uniq))}
    if len(uniq) <= o.max_rows:
        best = _optimise_rows(ctx, uniq, k)
    else:
        rng = np.random.default_rng(o.seed)
        rep = np.sort(rng.choice(len(uniq), o.max_rows, replace=False))
        rep_u = _optimise_rows(ctx, uniq[rep], k)
        mean, std = uniq.mean(axis=0), uniq.std(axis=0)
        z = (uniq - mean) / np.where(std > 0, std, 1.0)
        near = min(3, len(rep))
        _, nb = cKDTree(z[rep]).query(z, k=near)
        nb = np.asarray(nb).reshape(len(uniq), near)
        cands = rep_u[nb].reshape(len(uniq), near * k, -1)                  # (n, near*k, p)
        pred = ctx.predict(np.repeat(uniq, near * k, axis=0), cands.reshape(-1, cands.shape[-1]))[0]
        pred = pred.reshape(len(uniq), near * k)
        order = np.argsort(-pred if ctx.sense == "max" else pred, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(cands, order[:, :, None], axis=1)
        info.update(representative_rows=int(len(rep)), neighbours=near)
    logger.info("lse-optimise: %d targets (%d distinct attribute rows), GA %dx%dx%d", len(rows), len(uniq),
                o.pop_size, o.n_gen, o.n_restarts)
    return Proposed(best[inverse], info=info)


def _differentiable_emulators(ctx: Context) -> list[Any]:
    """Emulators with the ``torch_mlp`` backend on the context's training rows (fitted once per context)."""
    from dataclasses import replace

    if "differentiable" not in ctx.cache:
        from lsegeo.regionalize.training import fit_emulators

        es = ctx.settings.emulator
        if es.backend == "torch_mlp" and ctx.emulators:
            ctx.cache["differentiable"] = ctx.emulators
        else:
            torch_settings = replace(ctx.settings, emulator=replace(es, backend="torch_mlp", backend_options={}))
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
    rows = _differentiable_emulators(ctx)[0].encode(targets.attributes)
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
     "lse-select": "lsegeo.regionalize.methods:lse_select_sets",
     "lse-optimise": "lsegeo.regionalize.methods:lse_optimise",
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
    member, donor : numpy.ndarray or None
        As in :class:`Proposed`.
    seconds : float
        Time of the method (prediction of scores excluded).
    info : dict
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

    @property
    def point(self) -> np.ndarray:
        """``(n, n_params)`` the point estimates in model units."""
        return self.params[:, 0]


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
    else:  # clipped: exp(log(bound)) of a log-scale parameter may miss the bound by one rounding
        params = np.clip(space.from_unit(proposed.unit.reshape(-1, p)).reshape(n, k, p), space.lower, space.upper)
    predicted, spread = np.full((n, k), np.nan), np.full(n, np.nan)
    if ctx.emulators:
        rows = ctx.encode(targets.attributes)
        mean, std = ctx.predict(np.repeat(rows, k, axis=0), proposed.unit.reshape(-1, p))
        predicted, spread = mean.reshape(n, k), std.reshape(n, k)[:, 0]
    logger.info("%s: %d targets x %d sets in %.2f s", name, n, k, seconds)
    return RegionalResult(method=name, targets=[str(t) for t in targets.targets], unit=proposed.unit, params=params,
                          predicted=predicted, spread=spread, param_names=space.names, member=proposed.member,
                          donor=proposed.donor, seconds=seconds, info=proposed.info)
