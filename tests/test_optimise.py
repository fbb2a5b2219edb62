"""Tests of lsegeo.optimise: GA / NSGA-II proposals for many basins on an emulator.

The emulator here is analytic: per-basin shifted sphere, Rastrigin and Ackley functions (known
optima), and a two-objective problem whose Pareto set is the segment between two per-basin
points. It has the interface of an lsegeo emulator (``predict``, ``to_bytes``) and a module-level
loader, so it also travels to dask worker processes.
"""

from __future__ import annotations

import hashlib
import io
import sys

import cloudpickle
import numpy as np
import pytest

from lsegeo.optimise.candidates import Proposals
from lsegeo.optimise.fanout import emulator_cache_info, propose_on_dask
from lsegeo.optimise.problem import run_seed
from lsegeo.optimise.proposals import propose
from lsegeo.optimise.pymoo_engine import propose_loop

# the workers cannot import this test module: ship its functions and classes by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class AnalyticEmulator:
    """Per-basin shifted test functions in the unit cube.

    ``kind`` is "sphere", "rastrigin", "ackley" (one target, maximised: the negated function, 0 at
    ``centres[b]``), "plateau" (0 on a ball of radius 0.1 around the centre), or "pareto" (two
    targets: ``|u - a_b|^2`` to minimise and ``-|u - c_b|^2`` to maximise).
    """

    def __init__(self, kind: str, centres: np.ndarray, others: np.ndarray | None = None) -> None:
        self.kind = kind
        self.centres = np.asarray(centres, dtype=float)
        self.others = None if others is None else np.asarray(others, dtype=float)

    def predict(self, basin_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        z = np.asarray(u) - self.centres[basin_idx]
        d = z.shape[1]
        if self.kind == "sphere":
            f = (z ** 2).sum(1)
        elif self.kind == "plateau":
            f = np.maximum(np.sqrt((z ** 2).sum(1)) - 0.1, 0.0) ** 2
        elif self.kind == "rastrigin":
            x = 6.0 * z
            f = 10.0 * d + (x ** 2 - 10.0 * np.cos(2 * np.pi * x)).sum(1)
        elif self.kind == "ackley":
            x = 10.0 * z
            f = (-20.0 * np.exp(-0.2 * np.sqrt((x ** 2).mean(1))) - np.exp(np.cos(2 * np.pi * x).mean(1))
                 + 20.0 + np.e)
        elif self.kind == "pareto":
            f2 = ((np.asarray(u) - self.others[basin_idx]) ** 2).sum(1)
            return np.stack([(z ** 2).sum(1), -f2], axis=1)
        else:
            raise ValueError(self.kind)
        return -f[:, None]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, kind=np.array(self.kind), centres=self.centres,
                 others=self.centres if self.others is None else self.others, has_others=self.others is not None)
        return buf.getvalue()


def load_bytes(blob: bytes) -> AnalyticEmulator:
    """The loader of :class:`AnalyticEmulator` (what ``lsegeo.emulators.load_bytes`` is for real ones)."""
    z = np.load(io.BytesIO(blob))
    return AnalyticEmulator(str(z["kind"]), z["centres"], z["others"] if bool(z["has_others"]) else None)


class Counting:
    """A predict function that counts its calls and rows."""

    def __init__(self, predict) -> None:
        self.predict, self.calls, self.rows = predict, 0, 0

    def __call__(self, basin_idx, u):
        self.calls += 1
        self.rows += len(u)
        return self.predict(basin_idx, u)


def centres(n_basins: int, n_params: int, seed: int = 0, lo: float = 0.2, hi: float = 0.8) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, (n_basins, n_params))


def pairwise_min(u: np.ndarray) -> float:
    d = np.sqrt(((u[:, None, :] - u[None, :, :]) ** 2).sum(-1))
    return d[np.triu_indices(len(u), 1)].min()


# ------------------------------------------------------------------------------------------------
# the GA finds the optima, all basins together
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, n_params, pop, n_gen, restarts", [
    ("sphere", 6, 40, 60, 2), ("rastrigin", 3, 60, 80, 3), ("ackley", 4, 50, 80, 3)])
def test_ga_finds_known_optima_of_several_basins(kind, n_params, pop, n_gen, restarts):
    c = centres(8, n_params, seed=1)
    em = AnalyticEmulator(kind, c)
    res = propose(em.predict, np.arange(8), n_params, ("max",), 5, pop_size=pop, n_gen=n_gen,
                  n_restarts=restarts, seed=11, min_distance=0.001, local_share=0.0)
    assert isinstance(res, Proposals)
    assert res.u.shape == (8, 5, n_params) and res.predicted.shape == (8, 5, 1)
    best = res.u[:, 0]
    assert np.abs(best - c).max() < 0.01, f"{kind}: best proposal off the optimum by {np.abs(best - c).max():.4f}"
    np.testing.assert_allclose(res.predicted[..., 0], em.predict(np.repeat(np.arange(8), 5),
                                                                 res.u.reshape(-1, n_params)).reshape(8, 5))
    # best first
    assert np.all(np.diff(res.predicted[..., 0], axis=1) <= 0)


def test_pymoo_engine_finds_the_optima_and_equals_the_loop():
    c = centres(4, 5, seed=2)
    em = AnalyticEmulator("sphere", c)
    kw = {"pop_size": 30, "n_gen": 40, "n_restarts": 2, "seed": 5, "min_distance": 0.001}
    batched = propose(Counting(em.predict), np.arange(4), 5, ("max",), 4, engine="pymoo", local_share=0.0, **kw)
    assert np.abs(batched.u[:, 0] - c).max() < 0.02
    loop = propose_loop(em.predict, np.arange(4), 5, ("max",), 4, **kw)
    # the same pymoo runs with the same seeds, only the emulator calls batched differently
    np.testing.assert_array_equal(batched.u, loop.u)
    np.testing.assert_array_equal(batched.predicted, loop.predicted)
    assert batched.n_predict_calls == 40 and loop.n_predict_calls == 40 * 4 * 2


# ------------------------------------------------------------------------------------------------
# batching: one emulator call per generation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numpy", "pymoo"])
@pytest.mark.parametrize("n_basins, restarts", [(1, 1), (9, 3)])
def test_one_predict_call_per_generation(engine, n_basins, restarts):
    em = AnalyticEmulator("sphere", centres(n_basins, 4))
    counting = Counting(em.predict)
    n_gen, pop = 12, 20
    res = propose(counting, np.arange(n_basins), 4, ("max",), 3, pop_size=pop, n_gen=n_gen,
                  n_restarts=restarts, seed=0, engine=engine, local_share=0.0, min_distance=0.01)
    assert counting.calls == n_gen == res.n_predict_calls
    assert res.n_evaluations == counting.rows
    if engine == "numpy":
        assert counting.rows == n_basins * restarts * pop * n_gen
    else:   # pymoo may make fewer offspring when duplicates leave it short
        assert counting.rows <= n_basins * restarts * pop * n_gen


# ------------------------------------------------------------------------------------------------
# distinct proposals, existing points, relaxation, frozen dimensions
# ------------------------------------------------------------------------------------------------


def test_proposals_are_distinct_and_avoid_existing_points():
    n_basins, n_params, md = 5, 4, 0.03
    c = centres(n_basins, n_params, seed=3)
    em = AnalyticEmulator("plateau", c)
    rng = np.random.default_rng(0)
    # already simulated: the centre itself and points on the optimal plateau
    existing = [np.vstack([c[b], c[b] + rng.normal(0, 0.03, (20, n_params))]) for b in range(n_basins)]
    existing[2] = None
    res = propose(em.predict, np.arange(n_basins), n_params, ("max",), 20, pop_size=50, n_gen=40,
                  n_restarts=2, seed=4, existing=existing, min_distance=md, local_share=0.0)
    assert not res.relaxed.any() and np.all(res.min_distance == md)
    for b in range(n_basins):
        assert pairwise_min(res.u[b]) >= md
        if existing[b] is not None:
            d = np.sqrt(((res.u[b][:, None, :] - existing[b][None]) ** 2).sum(-1))
            assert d.min() >= md
        # still on the optimal plateau (predicted optimum 0)
        assert res.predicted[b, :, 0].min() > -1e-3


@pytest.mark.parametrize("engine", ["numpy", "pymoo"])
def test_min_distance_is_relaxed_and_reported_when_points_run_short(engine):
    # a sharp optimum: the final populations collapse, 0.3 apart is impossible for 20 good points
    em = AnalyticEmulator("sphere", centres(3, 3, seed=4))
    res = propose(em.predict, np.arange(3), 3, ("max",), 20, pop_size=30, n_gen=30, n_restarts=1,
                  seed=2, min_distance=0.3, engine=engine, local_share=0.0)
    assert res.relaxed.all()
    assert np.all(res.min_distance < 0.3)
    for b in range(3):
        assert pairwise_min(res.u[b]) >= res.min_distance[b]
        assert len(np.unique(res.u[b], axis=0)) == 20


@pytest.mark.parametrize("engine", ["numpy", "pymoo"])
def test_ga_archive_keeps_good_proposals_apart_on_a_sharp_optimum(engine):
    # the final population of a GA on a sphere collapses far below min_distance; the archive of the
    # best point per cell still gives 20 proposals 0.01 apart, all close to the optimum
    c = centres(3, 8, seed=13)
    em = AnalyticEmulator("sphere", c)
    pop, n_gen = (60, 60) if engine == "numpy" else (30, 40)
    res = propose(em.predict, np.arange(3), 8, ("max",), 20, pop_size=pop, n_gen=n_gen, n_restarts=2, seed=8,
                  min_distance=0.01, engine=engine, local_share=0.0)
    assert not res.relaxed.any()
    for b in range(3):
        assert pairwise_min(res.u[b]) >= 0.01
        assert np.sqrt(((res.u[b] - c[b]) ** 2).sum(1)).max() < 0.1


def test_ga_archive_holds_the_best_point_of_the_best_cells():
    from lsegeo.optimise.archive import Archive

    rng = np.random.default_rng(0)
    n_runs, n, dim, size, side = 4, 30, 3, 40, 0.2
    archive = Archive(n_runs, size, dim, side)
    xs, fs = [], []
    for _ in range(12):
        X, F = rng.random((n_runs, n, dim)), rng.random((n_runs, n))
        archive.update(slice(None), X, F)
        xs.append(X)
        fs.append(F)
    X, F = np.concatenate(xs, 1), np.concatenate(fs, 1)
    for r in range(n_runs):
        cells: dict[tuple, float] = {}
        for x, f in zip(X[r], F[r], strict=True):
            key = tuple(np.floor(x / side).astype(int))
            cells[key] = min(f, cells.get(key, np.inf))
        expected = sorted(cells.values())[:size]
        got_x, got_f = archive.points(r)
        assert sorted(got_f[:, 0]) == expected
        assert len({tuple(np.floor(x / side).astype(int)) for x in got_x}) == len(got_x)


def test_fixed_dimensions_stay_at_their_values():
    n_basins, n_params = 4, 5
    c = centres(n_basins, n_params, seed=5)
    em = AnalyticEmulator("sphere", c)
    mask = np.zeros((n_basins, n_params), dtype=bool)
    mask[:, 1] = True          # parameter 1 held in every basin
    mask[2, 3] = True          # and parameter 3 in basin 2
    values = np.full(n_params, 0.5)
    for engine in ("numpy", "pymoo"):
        res = propose(em.predict, np.arange(n_basins), n_params, ("max",), 3, pop_size=30, n_gen=40,
                      n_restarts=1, seed=1, fixed_mask=mask, fixed_values=values, min_distance=0.001,
                      engine=engine, local_share=0.0)
        held = np.broadcast_to(mask[:, None, :], res.u.shape)
        assert np.all(res.u[held] == 0.5), engine
        free = ~mask
        assert np.abs(res.u[:, 0][free] - c[free]).max() < 0.03, engine


# ------------------------------------------------------------------------------------------------
# reproducibility and independence of the grouping
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numpy", "pymoo"])
def test_reproducible_and_independent_of_grouping(engine):
    basins = np.array([5, 2, 9, 0, 7, 3])
    n_params = 4
    em = AnalyticEmulator("rastrigin", centres(10, n_params, seed=6))
    rng = np.random.default_rng(1)
    existing = {int(b): rng.random((15, n_params)) for b in basins}
    mask = rng.random((10, n_params)) < 0.2
    values = rng.random((10, n_params))
    pop, n_gen = (30, 25) if engine == "numpy" else (16, 12)
    kw = {"pop_size": pop, "n_gen": n_gen, "n_restarts": 2, "seed": 42, "min_distance": 0.02, "engine": engine,
          "local_share": 0.0}

    def run(bs, **extra):
        bs = np.asarray(bs)
        return propose(em.predict, bs, n_params, ("max",), 6, existing=[existing[int(b)] for b in bs],
                       fixed_mask=mask[bs], fixed_values=values[bs], **{**kw, **extra})

    whole = run(basins)
    again = run(basins)
    np.testing.assert_array_equal(whole.u, again.u)
    np.testing.assert_array_equal(whole.predicted, again.predicted)
    parts = Proposals.concatenate([run(basins[:2]), run(basins[2:])])
    np.testing.assert_array_equal(whole.u, parts.u)
    np.testing.assert_array_equal(whole.predicted, parts.predicted)
    np.testing.assert_array_equal(whole.relaxed, parts.relaxed)
    order = np.argsort(basins)
    shuffled = run(basins[order])
    np.testing.assert_array_equal(whole.u[order], shuffled.u)
    other = run(basins, seed=43)
    assert not np.array_equal(whole.u, other.u)


def test_run_seeds_differ_by_basin_and_restart():
    seeds = {run_seed(7, b, k) for b in range(50) for k in range(3)}
    assert len(seeds) == 150
    assert run_seed(7, 3, 1) == run_seed(7, 3, 1) != run_seed(8, 3, 1)


# ------------------------------------------------------------------------------------------------
# NSGA-II
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numpy", "pymoo"])
def test_nsga2_proposals_lie_on_the_pareto_front_and_spread_along_it(engine):
    n_basins, n_params, n = 4, 3, 12
    a, c = centres(n_basins, n_params, seed=7, lo=0.1, hi=0.4), centres(n_basins, n_params, seed=8, lo=0.6, hi=0.9)
    em = AnalyticEmulator("pareto", a, c)
    pop, n_gen = (40, 60) if engine == "numpy" else (24, 40)
    res = propose(em.predict, np.arange(n_basins), n_params, ("min", "max"), n, algorithm="nsga2",
                  pop_size=pop, n_gen=n_gen, n_restarts=2, seed=9, min_distance=0.01, engine=engine,
                  local_share=0.0)
    assert res.predicted.shape == (n_basins, n, 2) and res.n_predict_calls == n_gen
    for b in range(n_basins):
        u = res.u[b]
        seg = c[b] - a[b]
        t = np.clip((u - a[b]) @ seg / (seg @ seg), 0, 1)
        off = np.sqrt(((u - (a[b] + t[:, None] * seg)) ** 2).sum(1))
        # near the Pareto set (random points of the cube are 0.2-0.5 away)
        assert off.max() < 0.15, f"basin {b}: a proposal is {off.max():.3f} off the Pareto set"
        # near the front, sqrt(f1) + sqrt(f2) = |a - c| (random points: 0.3-0.6 above)
        f1, f2 = res.predicted[b, :, 0], -res.predicted[b, :, 1]
        gap = np.sqrt(f1) + np.sqrt(f2) - np.sqrt(seg @ seg)
        assert gap.max() < 0.06 and np.median(gap) < 0.02, gap
        # spread: the extremes of the front are among the proposals (largest crowding distance)
        assert t.min() < 0.05 and t.max() > 0.95, (t.min(), t.max())
        # no proposal dominates another
        F = np.stack([f1, f2], 1)
        dom = np.all(F[:, None] <= F[None], -1) & np.any(F[:, None] < F[None], -1)
        assert not dom.any()
        assert pairwise_min(u) >= res.min_distance[b]


# ------------------------------------------------------------------------------------------------
# dask: the emulator shipped once, loaded once per worker
# ------------------------------------------------------------------------------------------------


def test_propose_on_dask_equals_local_and_loads_once_per_worker(client):
    n_basins, n_params = 8, 4
    em = AnalyticEmulator("ackley", centres(n_basins, n_params, seed=10))
    blob = em.to_bytes()
    basins = np.arange(n_basins)[::-1].copy()
    existing = [np.random.default_rng(b).random((10, n_params)) for b in range(n_basins)]
    mask = np.zeros((n_basins, n_params), dtype=bool)
    mask[::3, 0] = True
    kw = {"pop_size": 30, "n_gen": 30, "n_restarts": 2, "seed": 3, "min_distance": 0.01, "existing": existing,
          "fixed_mask": mask, "fixed_values": np.full(n_params, 0.25), "local_share": 0.0}
    local = propose(em.predict, basins, n_params, ("max",), 5, **kw)
    remote = propose_on_dask(client, blob, load_bytes, basins, n_params, ("max",), 5, basins_per_task=2,
                             progress=False, **kw)
    np.testing.assert_array_equal(local.u, remote.u)
    np.testing.assert_array_equal(local.predicted, remote.predicted)
    assert remote.n_predict_calls == 4 * 30          # 4 tasks of 2 basins, one call per generation each
    assert remote.n_evaluations == local.n_evaluations

    def loads(key_end: str) -> dict[str, int]:
        info = client.run(emulator_cache_info)
        return {w: sum(n for k, n in d.items() if k.endswith(key_end)) for w, d in info.items()}

    digest = hashlib.blake2b(blob, digest_size=20).hexdigest()
    first = loads(digest)
    assert all(n <= 1 for n in first.values()) and sum(first.values()) >= 1, first
    # a second call with the same emulator: still at most one load per worker
    again = propose_on_dask(client, blob, load_bytes, basins, n_params, ("max",), 5, basins_per_task=1,
                            progress=False, **kw)
    np.testing.assert_array_equal(local.u, again.u)
    after = loads(digest)
    assert all(n <= 1 for n in after.values()) and sum(after.values()) >= sum(first.values()), after

    # a loader given as 'module:function', imported on the workers
    by_name = propose_on_dask(client, blob, "tests.test_optimise:load_bytes", basins, n_params, ("max",), 5,
                              progress=False, **kw)
    np.testing.assert_array_equal(local.u, by_name.u)


# ------------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------------


def test_bad_arguments_are_reported():
    em = AnalyticEmulator("sphere", centres(2, 3))
    b = np.arange(2)
    with pytest.raises(ValueError, match="one target"):
        propose(em.predict, b, 3, ("max", "min"), 2, seed=0, local_share=0.0)
    with pytest.raises(ValueError, match="two targets"):
        propose(em.predict, b, 3, ("max",), 2, algorithm="nsga2", seed=0, local_share=0.0)
    with pytest.raises(ValueError, match="candidates"):
        propose(em.predict, b, 3, ("max",), 50, pop_size=10, n_restarts=2, seed=0, local_share=0.0)
    with pytest.raises(ValueError, match="shape"):
        propose(lambda bi, u: np.zeros((len(u), 2)), b, 3, ("max",), 2, pop_size=10, n_gen=2, seed=0,
                local_share=0.0)
    with pytest.raises(ValueError, match="one per basin"):
        propose(em.predict, b, 3, ("max",), 2, seed=0, existing=[None], local_share=0.0)
    with pytest.raises(ValueError, match="unit cube"):
        propose(em.predict, b, 3, ("max",), 2, seed=0, fixed_mask=[True, False, False], fixed_values=[2.0, 0, 0],
                local_share=0.0)
    with pytest.raises(ValueError, match="seed"):
        propose(em.predict, b, 3, ("max",), 2, seed=None, local_share=0.0)


def test_nan_predictions_rank_last():
    c = centres(2, 3, seed=12)
    em = AnalyticEmulator("sphere", c)

    def predict(bi, u):
        out = em.predict(bi, u)
        out[u[:, 0] > 0.9] = np.nan       # the emulator fails in a corner
        return out

    res = propose(predict, np.arange(2), 3, ("max",), 4, pop_size=30, n_gen=30, n_restarts=1, seed=0,
                  min_distance=0.001, local_share=0.0)
    assert np.isfinite(res.predicted).all()
    assert np.abs(res.u[:, 0] - c).max() < 0.03


def test_no_basins_give_empty_proposals_without_calling_the_emulator(client):
    def predict(bi, u):
        raise AssertionError("the emulator must not be called")

    none = np.zeros(0, dtype=int)
    for res in (propose(predict, none, 3, ("max",), 2, seed=0, local_share=0.0),
                propose_loop(predict, none, 3, ("max",), 2, seed=0),
                propose_on_dask(client, b"", load_bytes, none, 3, ("max",), 2, seed=0, progress=False,
                                local_share=0.0)):
        assert res.u.shape == (0, 2, 3) and res.predicted.shape == (0, 2, 1) and res.n_predict_calls == 0


# ------------------------------------------------------------------------------------------------
# the neighbourhood search around the best simulated points
# ------------------------------------------------------------------------------------------------


def _existing_with_scores(em: AnalyticEmulator, basins: np.ndarray, n: int, n_params: int, seed: int):
    """Random simulated points of each basin and their 'simulated' (= analytic) scores."""
    rng = np.random.default_rng(seed)
    pts = [rng.random((n, n_params)) for _ in basins]
    return pts, [em.predict(np.full(n, b), p) for b, p in zip(basins, pts, strict=True)]


def test_local_proposals_stay_near_the_best_simulated_points_and_beat_them():
    n_basins, n_params = 5, 6
    c = centres(n_basins, n_params, seed=20)
    em = AnalyticEmulator("sphere", c)
    basins = np.arange(n_basins)
    existing, scores = _existing_with_scores(em, basins, 40, n_params, seed=1)
    counting = Counting(em.predict)
    res = propose(counting, basins, n_params, ("max",), 8, seed=4, existing=existing, existing_scores=scores,
                  local_share=1.0, local_anchors=1, local_candidates=2000, local_radius=0.05, min_distance=0.005)
    assert counting.calls == 1 and counting.rows == n_basins * 2000    # one call, no GA
    assert res.n_predict_calls == 1 and res.settings["local_proposals"] == 8
    assert res.settings["optimiser_proposals"] == 0
    for b in range(n_basins):
        best = existing[b][np.argmax(scores[b][:, 0])]
        d = np.sqrt(((res.u[b] - best) ** 2).sum(1))
        assert d.max() < 0.4, d                       # perturbations of the best point only
        # screened by the emulator: every proposal is predicted better than the best simulated point
        assert res.predicted[b, :, 0].min() > scores[b][:, 0].max()
        np.testing.assert_allclose(res.predicted[b], em.predict(np.full(8, b), res.u[b]))
        assert pairwise_min(np.concatenate([res.u[b], existing[b]])) >= 0.005 - 1e-12


def test_hybrid_proposals_split_between_ga_and_neighbourhood_and_keep_apart():
    n_basins, n_params = 4, 5
    em = AnalyticEmulator("ackley", centres(n_basins, n_params, seed=21))
    basins = np.arange(n_basins)
    existing, scores = _existing_with_scores(em, basins, 30, n_params, seed=2)
    mask = np.zeros((n_basins, n_params), dtype=bool)
    mask[1, 2] = True
    res = propose(em.predict, basins, n_params, ("max",), 10, pop_size=30, n_gen=20, n_restarts=2, seed=5,
                  existing=existing, existing_scores=scores, local_share=0.7, min_distance=0.05,
                  fixed_mask=mask, fixed_values=np.full(n_params, 0.3))
    assert res.u.shape == (n_basins, 10, n_params)
    assert res.settings["optimiser_proposals"] == 3 and res.settings["local_proposals"] == 7
    assert res.n_predict_calls == 20 + 1
    assert np.all(res.u[1, :, 2] == 0.3)               # held dimensions stay held in both parts
    for b in range(n_basins):
        if not res.relaxed[b]:
            assert pairwise_min(np.concatenate([res.u[b], existing[b]])) >= 0.05 - 1e-12


def test_local_proposals_are_reproducible_independent_of_grouping_and_equal_on_dask(client):
    basins = np.array([4, 1, 6, 0])
    n_params = 4
    em = AnalyticEmulator("rastrigin", centres(8, n_params, seed=22))
    existing, scores = _existing_with_scores(em, np.arange(8), 20, n_params, seed=3)
    kw = {"pop_size": 20, "n_gen": 10, "n_restarts": 1, "seed": 9, "min_distance": 0.02, "local_share": 0.5,
          "local_candidates": 300}

    def run(bs):
        return propose(em.predict, bs, n_params, ("max",), 6, existing=[existing[b] for b in bs],
                       existing_scores=[scores[b] for b in bs], **kw)

    whole = run(basins)
    np.testing.assert_array_equal(whole.u, run(basins).u)
    parts = Proposals.concatenate([run(basins[:1]), run(basins[1:])])
    np.testing.assert_array_equal(whole.u, parts.u)
    remote = propose_on_dask(client, em.to_bytes(), load_bytes, basins, n_params, ("max",), 6, basins_per_task=3,
                             progress=False, existing=[existing[b] for b in basins],
                             existing_scores=[scores[b] for b in basins], **kw)
    np.testing.assert_array_equal(whole.u, remote.u)
    np.testing.assert_array_equal(whole.predicted, remote.predicted)


def test_local_search_anchors_on_the_pareto_front_with_two_targets():
    n_basins, n_params = 3, 4
    a, c = centres(n_basins, n_params, seed=23), centres(n_basins, n_params, seed=24)
    em = AnalyticEmulator("pareto", a, c)
    basins = np.arange(n_basins)
    existing, scores = _existing_with_scores(em, basins, 30, n_params, seed=4)
    res = propose(em.predict, basins, n_params, ("min", "max"), 6, algorithm="nsga2", pop_size=20, n_gen=10,
                  n_restarts=1, seed=2, existing=existing, existing_scores=scores, local_share=0.5,
                  local_radius=0.05, local_anchors=3, min_distance=0.01)
    assert res.u.shape == (n_basins, 6, n_params) and np.isfinite(res.predicted).all()
    # a basin whose points carry no score at all: the optimiser's proposals serve as anchors
    nan_scores = [np.full_like(s, np.nan) for s in scores]
    res = propose(em.predict, basins, n_params, ("min", "max"), 6, algorithm="nsga2", pop_size=20, n_gen=10,
                  n_restarts=1, seed=2, existing=existing, existing_scores=nan_scores, local_share=0.5,
                  local_radius=0.05, min_distance=0.01)
    assert np.isfinite(res.u).all()


def test_bad_local_arguments_are_reported():
    em = AnalyticEmulator("sphere", centres(2, 3))
    b = np.arange(2)
    existing = [np.random.default_rng(0).random((5, 3))] * 2
    with pytest.raises(ValueError, match="existing_scores"):
        propose(em.predict, b, 3, ("max",), 4, seed=0, existing=existing, local_share=0.5)
    with pytest.raises(ValueError, match=r"existing_scores\[0\] has shape \(4,\)"):
        propose(em.predict, b, 3, ("max",), 4, seed=0, existing=existing, existing_scores=[np.zeros(4)] * 2,
                local_share=0.5)
    with pytest.raises(ValueError, match="local_share"):
        propose(em.predict, b, 3, ("max",), 4, seed=0, local_share=1.5)
    with pytest.raises(ValueError, match="local_radius"):
        propose(em.predict, b, 3, ("max",), 4, seed=0, existing=existing, existing_scores=[np.zeros(5)] * 2,
                local_share=0.5, local_radius=0.0)
    with pytest.raises(ValueError, match="local_candidates"):
        propose(em.predict, b, 3, ("max",), 4, seed=0, existing=existing, existing_scores=[np.zeros(5)] * 2,
                local_share=1.0, local_candidates=2)
    with pytest.raises(TypeError, match="local_typo"):
        propose_on_dask(None, b"", load_bytes, b, 3, ("max",), 4, seed=0, local_typo=1)


# ------------------------------------------------------------------------------------------------
# plug-ins and settings
# ------------------------------------------------------------------------------------------------


def test_unknown_engine_and_algorithm_names_list_the_known_ones():
    from lsegeo.errors import UnknownNameError
    from lsegeo.optimise.algorithms import algorithm_for
    from lsegeo.optimise.proposals import ENGINES

    em = AnalyticEmulator("sphere", centres(2, 3))
    b = np.arange(2)
    assert ENGINES.names() == ["numpy", "pymoo"]
    with pytest.raises(UnknownNameError, match="known optimiser engines: numpy, pymoo"):
        propose(em.predict, b, 3, ("max",), 2, seed=0, local_share=0.0, engine="jax")
    with pytest.raises(UnknownNameError, match="known optimiser algorithms: ga, nsga2"):
        propose(em.predict, b, 3, ("max",), 2, seed=0, local_share=0.0, algorithm="cmaes")
    # checked before anything is shipped to the workers
    with pytest.raises(UnknownNameError, match="optimiser engine 'jax'"):
        propose_on_dask(None, b"", load_bytes, b, 3, ("max",), 2, seed=0, local_share=0.0, engine="jax")
    assert algorithm_for(1) == "ga" and algorithm_for(2) == "nsga2"
    with pytest.raises(ValueError, match="3 targets"):
        algorithm_for(3)


def test_proposal_settings_own_the_defaults_of_propose_and_the_configuration():
    import inspect

    from lsegeo.config import CalibrateConfig
    from lsegeo.optimise.settings import ProposalSettings

    ps = ProposalSettings()
    assert ps.min_distance == 0.1 and ps.local_share == 1.0
    params = inspect.signature(propose).parameters
    for name, value in ps.kwargs().items():
        if name == "seed":                     # propose asks for a seed
            assert params[name].default is inspect.Parameter.empty
        else:
            assert params[name].default == value, name
    cc = CalibrateConfig()
    config_names = {"n_proposals": "proposals", "n_gen": "generations", "n_restarts": "restarts"}
    for name in ("n_proposals", "pop_size", "n_gen", "n_restarts", "min_distance", "local_share", "local_anchors",
                 "local_candidates", "local_radius", "seed"):
        assert getattr(cc, config_names.get(name, name)) == getattr(ps, name), name
    # the default needs the scores of the simulated points, and says so
    em = AnalyticEmulator("sphere", centres(2, 3))
    with pytest.raises(ValueError, match="existing_scores"):
        propose(em.predict, np.arange(2), 3, ("max",), 10, seed=0)


def test_greedy_takes_what_exact_distances_take():
    """The fast distances of the candidate choice decide as exact ones do, duplicates and ties at md included."""
    from lsegeo.optimise.candidates import greedy

    def exact(X, order, existing, n, md):
        taken = []
        for i in order:
            others = np.vstack([existing, X[taken]]) if len(taken) or len(existing) else np.zeros((0, X.shape[1]))
            d = np.sqrt(np.square(others - X[i]).sum(1)).min() if len(others) else np.inf
            if d >= md and d > 0.0:
                taken.append(int(i))
                if len(taken) == n:
                    break
        return taken

    rng = np.random.default_rng(3)
    for trial in range(20):
        dims, k = int(rng.integers(2, 15)), int(rng.integers(0, 300))
        existing = rng.random((k, dims))
        X = rng.random((1500, dims))
        if k:
            X[:600] = np.clip(existing[rng.integers(0, k, 600)] + 0.05 * rng.standard_normal((600, dims)), 0, 1)
            X[600:620] = existing[:1].repeat(20, 0)  # exact duplicates of an existing point
            step = np.zeros(dims)
            step[0] = 0.1
            X[620] = existing[0] + step  # exactly min_distance away from an existing point
        md = float(rng.choice([0.0, 0.05, 0.1, 0.2]))
        order = rng.permutation(len(X))
        assert greedy(X, order, existing, 50, md) == exact(X, order, existing, 50, md), trial
