"""Direct calibration by DDS: the algorithm (lsegeo.optimise.dds), real basins, the dask runner and its store
(lsegeo.calibration.direct), the model adapter's batch runner as the only way to the model."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import SMALL_PERIODS, SMALL_WITHHELD

from lsegeo.calibration.direct import calibrate_direct, dds_basin, open_direct
from lsegeo.design import reflect_unit
from lsegeo.io.stores import open_store, sidecar_path
from lsegeo.metrics.kernels import score_all
from lsegeo.models.hbv.adapter import HBV_SPACE
from lsegeo.models.registry import get_model
from lsegeo.optimise.dds import basin_seed, dds, dds_budget_split, dds_draws
from lsegeo.periods import period_slices, simulation_window

WARMUP = 365
REAL = ["01022500", "01030500", "01047000"]


# ---------------------------------------------------------------------------------------------
# the algorithm


def test_budget_split_counts_every_run():
    steps, cand = dds_budget_split(2000, 4)
    assert steps == 500 and cand.tolist() == [500, 500, 500, 499] and 1 + cand.sum() == 2000
    steps, cand = dds_budget_split(300, 1)
    assert steps == 299 and cand.tolist() == [299]
    steps, cand = dds_budget_split(1, 4)
    assert steps == 0 and cand.sum() == 0
    with pytest.raises(ValueError, match="budget"):
        dds_budget_split(0, 1)


def test_reflection_at_the_bounds():
    x = np.array([-0.1, 1.2, -1.5, 2.5, 0.3, 0.0, 1.0])
    np.testing.assert_allclose(reflect_unit(x), [0.1, 0.8, 0.0, 1.0, 0.3, 0.0, 1.0])


@pytest.mark.parametrize("chains", [1, 4])
def test_dds_finds_the_optimum_of_an_analytic_function(chains):
    lo, hi = np.full(10, -2.0), np.full(10, 3.0)
    centre = np.linspace(-1.5, 2.5, 10)
    seen = []

    def sphere(x):
        seen.append(x.copy())
        return ((x - centre) ** 2).sum(axis=-1)

    res = dds(sphere, np.zeros(10), lo, hi, budget=2000, chains=chains, seed=3)
    evaluated = np.concatenate(seen)
    assert evaluated.shape[0] == 2000 == res["runs"]  # exactly the budget, x0 included
    assert ((evaluated >= lo) & (evaluated <= hi)).all()
    assert res["f"] < 0.02 and np.abs(res["x"] - centre).max() < 0.1
    assert res["history"][0] == pytest.approx(((0 - centre) ** 2).sum())
    assert (np.diff(res["history"]) <= 0).all() and res["history"][-1] == res["f"]
    again = dds(sphere, np.zeros(10), lo, hi, budget=2000, chains=chains, seed=3)
    np.testing.assert_array_equal(again["history"], res["history"])


def test_dds_griewank_reaches_the_global_basin():
    """Griewank in 10-D (one of Tolson & Shoemaker's test functions), minimum 0 at the origin."""

    def griewank(x):
        i = np.arange(1, x.shape[-1] + 1)
        return 1 + (x ** 2).sum(-1) / 4000 - np.prod(np.cos(x / np.sqrt(i)), axis=-1)

    lo, hi = np.full(10, -600.0), np.full(10, 600.0)
    res = dds(griewank, np.full(10, 400.0), lo, hi, budget=3000, chains=1, seed=0)
    assert griewank(np.full((1, 10), 400.0))[0] > 400 and res["f"] < 1.0


def _textbook_dds(f, x0, lo, hi, m, select, normal, pick, r=0.2):
    """DDS as written in Tolson & Shoemaker (2007), one evaluation at a time, given its random numbers."""
    xb, fb = x0.copy(), f(x0)
    for i in range(1, m):
        sel = select[i - 1] < 1 - np.log(i) / np.log(m)
        if not sel.any():
            sel[pick[i - 1]] = True
        x = xb.copy()
        for j in np.flatnonzero(sel):
            v = xb[j] + r * (hi[j] - lo[j]) * normal[i - 1, j]
            if v < lo[j]:
                v = lo[j] + (lo[j] - v)
                if v > hi[j]:
                    v = lo[j]
            elif v > hi[j]:
                v = hi[j] - (v - hi[j])
                if v < lo[j]:
                    v = hi[j]
            x[j] = v
        fx = f(x)
        if fx <= fb:
            xb, fb = x, fx
    return xb, fb


@pytest.mark.parametrize(("budget", "chains"), [(400, 1), (301, 3), (300, 3)])
def test_lock_step_chains_equal_textbook_dds(budget, chains):
    """Each chain of the vectorised engine is the textbook algorithm with m = its candidates + 1."""
    d = 6
    lo, hi = np.zeros(d), np.ones(d)  # the unit cube: no scaling between the two
    centre = np.linspace(0.1, 0.9, d)

    def f(x):
        return np.abs(x - centre).sum(axis=-1) + 0.1 * np.sin(20 * x).sum(axis=-1)

    x0 = np.full(d, 0.5)
    res = dds(f, x0, lo, hi, budget=budget, chains=chains, seed=11)
    steps, cand = dds_budget_split(budget, chains)
    select, normal, pick = dds_draws(11, steps, chains, d)
    for c in range(chains):
        n = int(cand[c])
        _, fc = _textbook_dds(lambda x: f(x[None, :])[0], x0, lo, hi, n + 1, select[:n, c], normal[:n, c],
                              pick[:n, c])
        assert res["chain_f"][c] == pytest.approx(fc, abs=1e-13)
    assert res["f"] == pytest.approx(min(res["chain_f"].min(), f(x0[None, :])[0]), abs=1e-13)


# ---------------------------------------------------------------------------------------------
# real basins


@pytest.fixture(scope="module")
def real(small_basins_store):
    """Forcing and observations of three real basins over the small periods' window."""
    window = simulation_window(SMALL_PERIODS, WARMUP)
    slices = period_slices(window, SMALL_PERIODS)
    f = open_store(small_basins_store, "forcing")[["prcp", "tmax", "tmin", "pet"]].sel(
        basin=REAL, time=slice(window[0], window[-1])).load()
    q = open_store(small_basins_store, "observed")["qobs"].sel(basin=REAL, time=slice(window[0], window[-1])).load()
    out = {b: ({v: f[v].sel(basin=b).values.astype("float64") for v in f}, q.sel(basin=b).values.astype("float64"))
           for b in REAL}
    return out, slices


def _rescore(forcing, obs, params, slices):
    q = get_model("hbv").run(forcing, np.asarray(params)[None, :])
    return {p: float(score_all(q[:, sl], obs[sl], None, ["kgeprime"])["kgeprime"][0]) for p, sl in slices.items()}


def _random_search_best(forcing, obs, slices, budget, seed):
    """Best calibration KGE' of ``budget`` uniform random parameter sets (the default set the first): the baseline
    a search must beat with the same budget."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    params = HBV_SPACE.from_unit(rng.random((budget, len(HBV_SPACE))))
    params[0] = HBV_SPACE.default
    window = len(obs)
    runner = get_model("hbv").runner(forcing, warmup_days=0)
    assert runner.days == window
    sl = slices["calibration"]
    return float(np.nanmax(score_all(runner.run(params)[:, sl], obs[sl], None, ["kgeprime"])["kgeprime"]))


def test_dds_basin_improves_on_the_default_reproducibly(real):
    data, slices = real
    for b in REAL:
        forcing, obs = data[b]
        res = dds_basin(forcing, obs, slices=slices, budget=300, chains=4, seed=basin_seed(7, b))
        h = res["history"]
        # better than what could be worse: the default set, and a random search with the same budget and seed
        assert res["best_score"]["calibration"] > _random_search_best(forcing, obs, slices, 300, basin_seed(7, b))
        assert h.shape == (300,) and res["runs"] == 300
        assert h[0] == pytest.approx(res["default_score"]["calibration"], abs=1e-12)
        assert (np.diff(h) >= 0).all()
        assert res["best_score"]["calibration"] >= res["default_score"]["calibration"]
        assert res["best_score"]["calibration"] > res["default_score"]["calibration"] + 0.05
        assert res["best_score"]["calibration"] == pytest.approx(h[-1], abs=1e-12)
        assert np.nanmax(res["chain_score"]) == pytest.approx(h[-1], abs=1e-12)
        assert ((res["best_params"] >= HBV_SPACE.lower) & (res["best_params"] <= HBV_SPACE.upper)).all()
        # an independent re-run through the adapter gives the same scores
        again = _rescore(forcing, obs, res["best_params"], slices)
        for p in slices:
            assert again[p] == pytest.approx(res["best_score"][p], abs=1e-12)
        same = dds_basin(forcing, obs, slices=slices, budget=300, chains=4, seed=basin_seed(7, b))
        np.testing.assert_array_equal(same["history"], h)
        np.testing.assert_array_equal(same["best_params"], res["best_params"])
    other = dds_basin(*data[REAL[0]], slices=slices, budget=300, chains=4, seed=basin_seed(8, REAL[0]))
    assert not np.array_equal(other["best_params"],
                              dds_basin(*data[REAL[0]], slices=slices, budget=300, chains=4,
                                        seed=basin_seed(7, REAL[0]))["best_params"])


def test_dds_basin_subset_space_and_bad_input(real):
    data, slices = real
    forcing, obs = data[REAL[1]]
    space = HBV_SPACE.subset(["FC", "BETA", "K1", "K2"])
    res = dds_basin(forcing, obs, space, "hbv", slices=slices, budget=120, chains=1, seed=1)
    fixed = [i for i, n in enumerate(HBV_SPACE.names) if n not in space.names]
    np.testing.assert_array_equal(res["best_params"][fixed], HBV_SPACE.default[fixed])
    assert (np.diff(res["history"]) >= 0).all() and res["history"].shape == (120,)
    with pytest.raises(ValueError, match="observed day"):
        dds_basin(forcing, np.full_like(obs, np.nan), slices=slices, budget=20)
    bad = dict(forcing, prcp=forcing["prcp"].copy())
    bad["prcp"][500] = np.nan
    with pytest.raises(ValueError, match="prcp"):
        dds_basin(bad, obs, slices=slices, budget=20)


# ---------------------------------------------------------------------------------------------
# many basins on a real LocalCluster, and the store


def test_calibrate_direct_on_a_cluster_writes_a_store_that_reproduces(small_basins_store, client, real, tmp_path):
    data, slices = real
    withheld = SMALL_WITHHELD[0]
    basins = [REAL[0], withheld, REAL[1], REAL[2]]
    out = tmp_path / "direct.zarr"
    ds = calibrate_direct(small_basins_store, basins, budget=200, chains=4, periods=SMALL_PERIODS,
                          warmup_days=WARMUP, client=client, store=out, chunk_basins=2, progress=False, seed=7,
                          checkpoints=[150, 1, 50, 200])
    assert out.exists() and sidecar_path(out).exists()
    lazy = open_direct(out)
    assert lazy["history"].chunks is not None and lazy["best_params"].chunks is not None  # dask-backed
    assert list(lazy.basin.values) == basins
    assert lazy.attrs["lsegeo_store_kind"] == "direct" and "10.1029/2005WR004723" in lazy.attrs["references"]
    assert lazy.attrs["lsegeo_budget"] == 200 and lazy.attrs["lsegeo_chains"] == 4
    # the basin without observations: NaN and a note, no runs
    w = lazy.sel(basin=withheld).load()
    assert np.isnan(w.best_score).all() and np.isnan(w.history).all() and np.isnan(w.best_params).all()
    assert int(w.runs) == 0 and "no observed streamflow" in str(w.note.values)
    for b in REAL:
        row = lazy.sel(basin=b).load()
        assert int(row.runs) == 200 and str(row.note.values) == "" and float(row.wall_seconds) > 0
        h = row.history.values
        assert (np.diff(h) >= 0).all()
        assert float(row.best_score.sel(period="calibration")) >= float(row.default_score.sel(period="calibration"))
        again = _rescore(*data[b], row.best_params.values, slices)
        for p in slices:
            assert again[p] == pytest.approx(float(row.best_score.sel(period=p)), abs=1e-12)
        # checkpoints: the best set after 1, 50, 150 and 200 runs, scored on every period; its
        # calibration score is the history's at that run, and run 200's set is the final best
        assert list(row.checkpoint.values) == [1, 50, 150, 200]
        ck = row.checkpoint_score.sel(period="calibration").values
        np.testing.assert_allclose(ck, h[[0, 49, 149, 199]], rtol=0, atol=1e-12)
        np.testing.assert_allclose(row.checkpoint_params.values[0], row.param_default.values)
        np.testing.assert_allclose(row.checkpoint_params.values[-1], row.best_params.values)
        mid = _rescore(*data[b], row.checkpoint_params.values[2], slices)
        for p in slices:
            assert mid[p] == pytest.approx(float(row.checkpoint_score.sel(checkpoint=150, period=p)), abs=1e-12)
        # the same search as dds_basin with the basin's seed, whatever the chunking
        one = dds_basin(*data[b], slices=slices, budget=200, chains=4, seed=basin_seed(7, b))
        np.testing.assert_allclose(h, one["history"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(row.best_params.values, one["best_params"], rtol=1e-12)
    xr.testing.assert_allclose(ds[["best_score", "history", "best_params"]].load(),
                               lazy[["best_score", "history", "best_params"]].load())


def test_checkpoints_outside_the_budget_are_refused(real, small_basins_store):
    data, slices = real
    with pytest.raises(ValueError, match=r"from 1 to the budget \(50\); got \[0, 51\]"):
        dds_basin(*data[REAL[0]], slices=slices, budget=50, chains=1, checkpoints=[0, 10, 51])
    with pytest.raises(ValueError, match="checkpoints"):
        calibrate_direct(small_basins_store, [REAL[0]], budget=50, checkpoints=[60], periods=SMALL_PERIODS,
                         warmup_days=WARMUP, progress=False)


# ---------------------------------------------------------------------------------------------
# the adapter protocol: a model reached only through its batch runner


class _FileRunner:
    """A test-only runner in the manner of an external model: ``submit`` prepares each member's inputs as files
    in a run directory, ``result`` runs them (here HBV, in this process, standing in for the HPC jobs) and reads
    the flow back from the output files."""

    def __init__(self, forcing, warmup_days, workdir):
        self._hbv = get_model("hbv").runner(forcing, warmup_days=warmup_days)
        self.days = self._hbv.days
        self.workdir = workdir
        self.submitted = 0

    def submit(self, params):
        run = self.workdir / f"batch{self.submitted:05d}"
        run.mkdir()
        for m, p in enumerate(np.atleast_2d(params)):
            np.save(run / f"member{m:03d}_params.npy", p)
        self.submitted += 1
        return _FileRun(self._hbv, run)

    def run(self, params):
        return self.submit(params).result()


class _FileRun:
    def __init__(self, hbv, run):
        self.hbv, self.run = hbv, run

    def result(self):
        members = sorted(self.run.glob("member*_params.npy"))
        for f in members:  # the "jobs": one model run per member, output written beside its inputs
            np.save(f.with_name(f.name.replace("_params", "_flow")), self.hbv.run(np.load(f)[None, :])[0])
        return np.stack([np.load(f.with_name(f.name.replace("_params", "_flow"))) for f in members])


class _FileModel:
    """The HBV model's space and forcing, run through :class:`_FileRunner`."""

    name = "hbv-files"
    space = HBV_SPACE
    forcing_variables = ("prcp", "tmax", "tmin", "pet")

    def __init__(self, workdir):
        self.workdir = workdir
        self.runners = []

    def runner(self, forcing, *, warmup_days=0):
        d = self.workdir / f"basin{len(self.runners)}"
        d.mkdir()
        self.runners.append(_FileRunner(forcing, warmup_days, d))
        return self.runners[-1]

    def run(self, forcing, params):
        return get_model("hbv").run(forcing, params)


def test_direct_calibration_reaches_the_model_only_through_the_adapter(real, tmp_path):
    """An adapter whose members are prepared as files and read back gives the very search of the HBV adapter."""
    from lsegeo.models.protocol import BatchRunner, ModelAdapter

    data, slices = real
    model = _FileModel(tmp_path)
    assert isinstance(model, ModelAdapter)
    forcing, obs = data[REAL[2]]
    res = dds_basin(forcing, obs, model=model, slices=slices, budget=41, chains=4, seed=basin_seed(3, REAL[2]))
    ref = dds_basin(forcing, obs, slices=slices, budget=41, chains=4, seed=basin_seed(3, REAL[2]))
    np.testing.assert_array_equal(res["history"], ref["history"])
    np.testing.assert_array_equal(res["best_params"], ref["best_params"])
    (runner,) = model.runners
    assert isinstance(runner, BatchRunner)
    assert runner.submitted == 10  # 40 candidates in lock-step batches of 4 chains
    assert len(list(tmp_path.glob("basin0/batch*/member*_params.npy"))) == 40



# ---------------------------------------------------------------------------------------------
# no score from too little data, periods that overlap (synthetic basins, in-process client)


def test_direct_calibration_needs_the_minimum_coverage(tmp_path):
    """A basin with 17 observed days of the 365 of its calibration period is not calibrated (its 'best' set would
    be fitted to 17 days); one with 17 of 365 on the test period is calibrated and its test score is NaN. Both
    coverages, and why, are in the store."""
    from lsegeo.periods import DEFAULT_MIN_COVERAGE
    from lsegeo.testing import PERIODS, WARMUP_DAYS, local_client
    from tests.test_ensemble import SPARSE_DAYS, sparse_basins_store

    store, (b0, b1, b2) = sparse_basins_store(tmp_path / "basins.zarr")
    out = tmp_path / "direct.zarr"
    with local_client() as c:
        calibrate_direct(store, [b0, b1, b2], budget=12, chains=2, periods=PERIODS, warmup_days=WARMUP_DAYS,
                         client=c, store=out, progress=False)
    ds = open_direct(out).load()
    assert ds.attrs["lsegeo_min_coverage"] == DEFAULT_MIN_COVERAGE == 0.8
    assert ds["coverage"].attrs["units"] == "1"
    assert float(ds["coverage"].sel(basin=b0, period="calibration")) == pytest.approx(SPARSE_DAYS / 365, abs=1e-12)
    assert float(ds["coverage"].sel(basin=b1, period="test")) == pytest.approx(SPARSE_DAYS / 365, abs=1e-12)
    assert (ds["coverage"].sel(basin=b2) == 1.0).all()
    # b0: skipped, with the reason; no parameters, no scores
    assert int(ds["runs"].sel(basin=b0)) == 0
    assert str(ds["note"].sel(basin=b0).values) == ("skipped: 17 observed day(s) of 365 in the calibration period "
                                                    "(coverage 0.047 < min_coverage 0.8)")
    assert ds["best_score"].sel(basin=b0).isnull().all() and ds["best_params"].sel(basin=b0).isnull().all()
    assert "17 observed day(s) of 365" in str(ds["score_note"].sel(basin=b0, period="calibration").values)
    # b1: calibrated on its full calibration year; its 17-day test score is NaN, with the reason
    assert int(ds["runs"].sel(basin=b1)) == 12 and str(ds["note"].sel(basin=b1).values) == ""
    assert np.isfinite(float(ds["best_score"].sel(basin=b1, period="calibration")))
    assert np.isnan(float(ds["best_score"].sel(basin=b1, period="test")))
    assert np.isnan(float(ds["default_score"].sel(basin=b1, period="test")))
    assert "in the test period (coverage 0.047 < min_coverage 0.8)" in str(
        ds["score_note"].sel(basin=b1, period="test").values)
    assert ds["best_score"].sel(basin=b2).notnull().all() and (ds["score_note"].sel(basin=b2) == "").all()
    # the threshold is a setting: 0.04 calibrates b0 on its 17 days
    with local_client() as c:
        low = calibrate_direct(store, [b0], budget=12, chains=2, periods=PERIODS, warmup_days=WARMUP_DAYS,
                               client=c, progress=False, min_coverage=0.04)
    assert int(low["runs"].sel(basin=b0)) == 12 and np.isfinite(float(low["best_score"].sel(basin=b0,
                                                                                             period="calibration")))


def test_dds_basin_refuses_a_calibration_period_with_too_few_observations():
    from lsegeo.testing import PERIODS, WARMUP_DAYS, synthetic_basins

    syn = synthetic_basins(1, seed=0)
    window = simulation_window(PERIODS, WARMUP_DAYS)
    slices = period_slices(window, PERIODS)
    obs = syn.observed["qobs"].values[0].astype("float64")
    cal = np.arange(slices["calibration"].start, slices["calibration"].stop)
    obs[np.setdiff1d(cal, cal[::21][:17])] = np.nan
    with pytest.raises(ValueError, match=r"17 observed day\(s\) of 365 in the calibration period \(coverage 0\.047 "
                                         r"< min_coverage 0\.8\)"):
        dds_basin(syn.forcing_arrays(syn.basins[0]), obs, slices=slices, budget=10, chains=1)
    res = dds_basin(syn.forcing_arrays(syn.basins[0]), obs, slices=slices, budget=10, chains=1, min_coverage=0.0)
    assert res["coverage"]["calibration"] == pytest.approx(17 / 365) and res["score_note"]["test"] == ""


def test_direct_settings_refuse_overlapping_periods():
    import dataclasses
    import datetime as dt

    from lsegeo.calibration.direct_settings import DirectSettings
    from lsegeo.periods import Period

    st = DirectSettings()
    assert st.min_coverage == 0.8 and st.allow_overlap is False
    assert [(p.start, p.end) for p in st.periods] == [(dt.date(1999, 10, 1), dt.date(2008, 9, 30)),
                                                      (dt.date(1989, 10, 1), dt.date(1999, 9, 30))]
    old = (Period("calibration", dt.date(1998, 10, 1), dt.date(2008, 9, 30)), st.periods[1])
    with pytest.raises(ValueError, match=r"'calibration' .* and period 'test' .* overlap from 1998-10-01 to "
                                         r"1999-09-30 \(365 days\)"):
        dataclasses.replace(st, periods=old)
    assert dataclasses.replace(st, periods=old, allow_overlap=True).periods == old
    with pytest.raises(ValueError, match="min_coverage"):
        DirectSettings(min_coverage=2)
