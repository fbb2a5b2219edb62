"""``lse-optimise``: a genetic algorithm on the emulator for every target, inside a trust region.

The batched optimiser of the calibration loop (:func:`lsegeo.optimise.proposals.propose`, and
its dask fan-out :func:`lsegeo.optimise.fanout.propose_on_dask`) addresses basins by index;
:class:`TargetRows` lets it optimise targets that are not the emulator's basins (ungauged
basins, grid cells), each within its own search box (:func:`_trust_box`).
"""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np

from lsegeo.regionalize.checkpoint import digest_arrays
from lsegeo.regionalize.methods import Context, Proposed, Targets

__all__ = ["TargetRows", "load_target_rows", "lse_optimise"]

logger = logging.getLogger(__name__)


class TargetRows:
    """An emulator seen through fixed attribute rows: ``predict(i, v)`` predicts target row ``i``.

    This lets the batched optimiser (:func:`lsegeo.optimise.proposals.propose` and its dask
    fan-out), which addresses basins by index, optimise targets that are not the emulator's
    basins (grid cells, ungauged basins). With ``lower``/``upper`` boxes, the optimiser's unit
    cube ``v`` maps onto each row's box, ``u = lower + (upper - lower) v`` (the trust region of
    :func:`lse_optimise`).
    """

    def __init__(self, emulators: list[Any], rows: np.ndarray, lower: np.ndarray | None = None,
                 upper: np.ndarray | None = None) -> None:
        self.emulators = emulators
        self.rows = np.asarray(rows, dtype=np.float64)
        self.lower = None if lower is None else np.asarray(lower, dtype=np.float64)
        self.upper = None if upper is None else np.asarray(upper, dtype=np.float64)

    def to_cube(self, idx: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The unit-cube sets of optimiser points ``v`` ``(n, n_params)`` of rows ``idx``."""
        if self.lower is None:
            return np.asarray(v, dtype=np.float64)
        i = np.asarray(idx, dtype=np.int64)
        return self.lower[i] + (self.upper[i] - self.lower[i]) * v

    def predict(self, idx: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``(n, 1)`` mean prediction of the objective for target rows ``idx`` ``(n,)`` at ``v`` ``(n, n_params)``."""
        a = self.rows[np.asarray(idx, dtype=np.int64)]
        u = self.to_cube(idx, v)
        return np.mean([em.predict_features(a, u)[:, :1] for em in self.emulators], axis=0)

    def to_bytes(self) -> bytes:
        """The emulators, rows and boxes as bytes (an ``.npz``, no pickle), for :func:`load_target_rows`."""
        arrays = {"rows": self.rows, **{f"emulator_{i}": np.frombuffer(em.to_bytes(), dtype=np.uint8)
                                        for i, em in enumerate(self.emulators)}}
        if self.lower is not None:
            arrays.update(lower=self.lower, upper=self.upper)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()


def load_target_rows(blob: bytes) -> TargetRows:
    """Rebuild a :class:`TargetRows` from :meth:`TargetRows.to_bytes` (on a dask worker)."""
    from lsegeo.emulators import load_bytes

    with np.load(io.BytesIO(blob), allow_pickle=False) as d:
        n = sum(1 for key in d.files if key.startswith("emulator_"))
        emulators = [load_bytes(d[f"emulator_{i}"].tobytes()) for i in range(n)]
        lower, upper = (d["lower"], d["upper"]) if "lower" in d.files else (None, None)
        return TargetRows(emulators, d["rows"], lower, upper)


def _optimise_rows(ctx: Context, rows: np.ndarray, k: int, box: np.ndarray | None = None) -> np.ndarray:
    """``(n, k, n_params)`` GA optima on the emulator for attribute rows ``(n, n_attr)``, best first.

    ``box`` ``(n, 2, n_params)``: the lower and upper unit-cube bounds of each row's search.
    """
    from lsegeo.optimise.proposals import propose

    o = ctx.settings.optimise
    n_params = len(ctx.training.space)
    kwargs = dict(algorithm="ga", pop_size=o.pop_size, n_gen=o.n_gen, n_restarts=o.n_restarts, seed=o.seed,
                  min_distance=o.min_distance, local_share=0.0, engine="numpy")
    view = TargetRows(ctx.require_emulators("lse-optimise"), rows, *((box[:, 0], box[:, 1]) if box is not None
                                                                      else (None, None)))
    out = np.empty((len(rows), k, n_params))
    step = max(1, ctx.settings.chunk_targets // max(1, o.pop_size * o.n_restarts // 50))
    blob = view.to_bytes() if ctx.client is not None else b""
    # the emulators enter through the checkpoint's scope: their archives are not byte-reproducible
    view_key = "" if ctx.checkpoint is None else digest_arrays(ctx.checkpoint.scope, view.rows, box)
    for lo in range(0, len(rows), step):
        hi = min(len(rows), lo + step)
        idx = np.arange(lo, hi)

        def chunk(idx=idx) -> np.ndarray:
            if ctx.client is not None:
                from lsegeo.optimise.fanout import propose_on_dask

                res = propose_on_dask(ctx.client, blob, load_target_rows, idx, n_params, (ctx.sense,), k,
                                      progress=False, **kwargs)
            else:
                res = propose(view.predict, idx, n_params, (ctx.sense,), k, **kwargs)
            return np.clip(res.u, 0.0, 1.0)

        if ctx.checkpoint is None:
            v = chunk()
        else:  # a chunk depends on the whole view (rows, boxes, emulators): the seeds follow the row index
            v = ctx.checkpoint.array("lse-optimise", digest_arrays(view_key, lo, hi, k, kwargs), chunk)
        out[lo:hi] = view.to_cube(np.repeat(idx, k), v.reshape(-1, n_params)).reshape(hi - lo, k, n_params)
    return np.clip(out, 0.0, 1.0)


def _trust_box(ctx: Context, targets: Targets) -> np.ndarray | None:
    """``(n, 2, n_params)`` each target's search box: the envelope of its donors' calibrated sets.

    The donors are the ``optimise.trust_donors`` spatially nearest and as many most similar
    training basins; the envelope of their calibrated sets (unit cube) is widened by
    ``optimise.trust_margin`` on each side. None when ``trust_donors`` is 0 (the whole cube).
    """
    from lsegeo.emulators.features import STUDY_ATTRIBUTES
    from lsegeo.regionalize.donors import nearest_donors, similar_donors

    o, tr = ctx.settings.optimise, ctx.training
    if o.trust_donors == 0:
        return None
    names = list(ctx.emulators[0].encoder.names) if ctx.emulators else list(STUDY_ATTRIBUTES)
    near, _ = nearest_donors(tr.lat, tr.lon, targets.lat, targets.lon, k=o.trust_donors)
    like, _ = similar_donors(tr.attributes, targets.attributes, names, k=o.trust_donors)
    sets = tr.space.to_unit(tr.calibrated)[np.concatenate([near, like], axis=1)]
    lower = np.clip(sets.min(axis=1) - o.trust_margin, 0.0, 1.0)
    upper = np.clip(sets.max(axis=1) + o.trust_margin, 0.0, 1.0)
    return np.stack([lower, upper], axis=1)


def lse_optimise(ctx: Context, targets: Targets) -> Proposed:
    """A genetic algorithm on the emulator for every distinct target, inside a trust region.

    A target's search is limited to the envelope of its donors' calibrated sets
    (:func:`_trust_box`; ``optimise.trust_donors: 0`` searches the whole cube, as the study
    does): the emulator is trusted where basins like the target were calibrated, and the GA
    cannot chase its errors into corners of the cube no similar basin supports. Targets with the
    same attributes and box are optimised once. With more distinct targets than
    ``optimise.max_rows`` (a grid whose cells have interpolated attributes), the GA runs on
    ``max_rows`` representatives drawn at random (seeded); each target then takes, among the K
    optima of its 3 nearest representatives in standardised attribute space, the K that the
    emulator ranks best at the target's own attributes.
    """
    from scipy.spatial import cKDTree

    s, o = ctx.settings, ctx.settings.optimise
    rows = ctx.rows(targets)
    box = _trust_box(ctx, targets)
    key = rows if box is None else np.hstack([rows, box.reshape(len(rows), -1)])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    uniq = rows[first]
    ubox = None if box is None else box[first]
    k = min(s.n_samples, o.pop_size * o.n_restarts)
    info: dict[str, Any] = {"description": "GA optimum on the emulator from the target's attributes, inside the "
                                           "envelope of its donors' calibrated sets" if box is not None else
                                           "GA optimum on the emulator from the target's attributes",
                            "pop_size": o.pop_size, "n_gen": o.n_gen, "n_restarts": o.n_restarts,
                            "trust_donors": o.trust_donors, "trust_margin": o.trust_margin,
                            "distinct_targets": int(len(uniq))}
    if len(uniq) <= o.max_rows:
        best = _optimise_rows(ctx, uniq, k, ubox)
    else:
        rng = np.random.default_rng(o.seed)
        rep = np.sort(rng.choice(len(uniq), o.max_rows, replace=False))
        rep_u = _optimise_rows(ctx, uniq[rep], k, None if ubox is None else ubox[rep])
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
    logger.info("lse-optimise: %d targets (%d distinct), GA %dx%dx%d", len(rows), len(uniq),
                o.pop_size, o.n_gen, o.n_restarts)
    return Proposed(best[inverse.ravel()], info=info)
