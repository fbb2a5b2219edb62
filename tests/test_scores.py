"""Tests of lsegeo.metrics (kernels, objectives, xarray_api): hand-computed values, missing days, broadcasting,
xarray/dask layer, registry and edge cases."""

from __future__ import annotations

import dataclasses
import math
import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lsegeo.metrics import kernels as K
from lsegeo.metrics import objectives as O
from lsegeo.metrics import xarray_api as X

NP_KERNELS = {name: O.OBJECTIVES[name].func for name in O.OBJECTIVES}

# --- the hand-computed example --------------------------------------------------------------
OBS = np.array([1.0, 2.0, 3.0, 4.0])
SIM = np.array([2.0, 2.0, 4.0, 4.0])
MONTH = np.array([1, 1, 2, 2])


def test_hand_computed_kge_family():
    # mean_o = 10/4 = 2.5, mean_s = 12/4 = 3
    # obs anomalies -1.5, -0.5, 0.5, 1.5 -> var_o = (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25
    # sim anomalies -1, -1, 1, 1         -> var_s = 4/4 = 1
    # cov = (1.5 + 0.5 + 0.5 + 1.5)/4 = 1
    r = 1.0 / math.sqrt(1.0 * 1.25)
    alpha = math.sqrt(1.0) / math.sqrt(1.25)
    beta = 3.0 / 2.5
    kge = 1.0 - math.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
    assert kge == pytest.approx(0.7504178, abs=1e-7)  # 1 - sqrt(2 * 0.1055728^2 + 0.2^2)
    assert float(K.kge_np(SIM, OBS)) == pytest.approx(kge, rel=1e-12)

    # CV_s = 1/3, CV_o = sqrt(1.25)/2.5 -> gamma = (1/3) / (sqrt(1.25)/2.5)
    gamma = (1.0 / 3.0) / (math.sqrt(1.25) / 2.5)
    kgep = 1.0 - math.sqrt((r - 1) ** 2 + (gamma - 1) ** 2 + (beta - 1) ** 2)
    assert float(K.kgeprime_np(SIM, OBS)) == pytest.approx(kgep, rel=1e-12)
    assert float(K.nkgeprime_np(SIM, OBS)) == pytest.approx(kgep / (2 - kgep), rel=1e-12)


def test_hand_computed_errors_and_nse():
    # errors 1, 0, 1, 0: SSE = 2, sum of squared obs anomalies = 5
    assert float(K.nse_np(SIM, OBS)) == pytest.approx(1 - 2 / 5, rel=1e-12)
    assert float(K.mae_np(SIM, OBS)) == pytest.approx((1 + 0 + 1 + 0) / 4, rel=1e-12)
    assert float(K.rmse_np(SIM, OBS)) == pytest.approx(math.sqrt(2 / 4), rel=1e-12)


def test_hand_computed_lognse():
    eps = 0.01 * 2.5  # 1 % of the mean observed flow
    lo = [math.log(q + eps) for q in OBS]
    ls = [math.log(q + eps) for q in SIM]
    mlo = sum(lo) / 4
    num = sum((a - b) ** 2 for a, b in zip(ls, lo, strict=True))
    den = sum((b - mlo) ** 2 for b in lo)
    assert float(K.lognse_np(SIM, OBS)) == pytest.approx(1 - num / den, rel=1e-12)


def test_lognse_handles_zero_flows():
    obs = np.array([0.0, 0.0, 1.0, 3.0, 0.5, 0.0])
    sim = np.array([0.0, 0.2, 1.5, 2.0, 0.0, 0.0])
    eps = 0.01 * obs.mean()
    lo, ls = np.log(obs + eps), np.log(sim + eps)
    expect = 1 - np.sum((ls - lo) ** 2) / np.sum((lo - lo.mean()) ** 2)
    got = float(K.lognse_np(sim, obs))
    assert np.isfinite(got)
    assert got == pytest.approx(expect, rel=1e-12)


def test_monthly_mean_maxabs_hand_made():
    # month:  1    1    2    2    3    3
    obs = np.array([1.0, 3.0, 10.0, 20.0, 5.0, 5.0])
    sim = np.array([2.0, 2.0, 12.0, 24.0, 5.0, 4.0])
    month = np.array([1, 1, 2, 2, 3, 3])
    # monthly means obs: 2, 15, 5; sim: 2, 18, 4.5 -> |diff| 0, 3, 0.5 -> max 3
    assert float(K.monthly_mean_maxabs_np(sim, obs, month)) == pytest.approx(3.0)
    # hide the day 4 observation: month 2 obs mean = 10, sim mean over the same day = 12 -> 2;
    # the maximum is now 2 (month 3 still 0.5)
    obs2 = obs.copy()
    obs2[3] = np.nan
    assert float(K.monthly_mean_maxabs_np(sim, obs2, month)) == pytest.approx(2.0)
    # the same calendar month in different years is pooled (mean seasonal cycle)
    assert float(K.monthly_mean_maxabs_np(SIM, OBS, np.array([1, 2, 1, 2]))) == pytest.approx(
        max(abs((2 + 4) / 2 - (1 + 3) / 2), abs((2 + 4) / 2 - (2 + 4) / 2))
    )
    # a month without any valid day is left out of the maximum
    obs3 = obs.copy()
    obs3[2:4] = np.nan
    assert float(K.monthly_mean_maxabs_np(sim, obs3, month)) == pytest.approx(0.5)


def test_monthly_needs_valid_month():
    with pytest.raises(ValueError, match="month"):
        K.monthly_mean_maxabs_np(SIM, OBS)
    with pytest.raises(ValueError, match="1..12"):
        K.monthly_mean_maxabs_np(SIM, OBS, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="shape"):
        K.monthly_mean_maxabs_np(SIM, OBS, np.array([1, 2]))


# --- perfect simulation ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(O.OBJECTIVES))
def test_perfect_simulation_scores_best(name):
    rng = np.random.default_rng(1)
    obs = rng.gamma(2.0, 1.5, 400)
    obs[rng.random(400) < 0.1] = np.nan
    month = (np.arange(400) // 31) % 12 + 1
    obj = O.OBJECTIVES[name]
    got = obj.func(obs.copy(), obs, month)
    assert float(got) == pytest.approx(obj.best, abs=1e-12)
    assert float(O.as_loss(name, got)) == pytest.approx(0.0, abs=1e-12)


# --- missing observations --------------------------------------------------------------------


def _series(n=60, seed=2):
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 2.0, n)
    sim = obs * rng.lognormal(0.0, 0.3, n) + 0.2
    month = (np.arange(n) // 5) % 12 + 1
    return sim, obs, month


@pytest.mark.parametrize("name", list(O.OBJECTIVES))
def test_missing_obs_are_skipped_not_zero(name):
    sim, obs, month = _series()
    gone = np.zeros(obs.size, bool)
    gone[[0, 3, 4, 17, 30, 31, 59]] = True
    obs_nan = np.where(gone, np.nan, obs)
    f = O.OBJECTIVES[name].func
    with_nan = float(f(sim, obs_nan, month))
    removed = float(f(sim[~gone], obs[~gone], month[~gone]))
    as_zero = float(f(sim, np.where(gone, 0.0, obs), month))
    assert with_nan == pytest.approx(removed, rel=1e-12, abs=1e-14)
    assert not np.isclose(with_nan, as_zero)


def test_missing_sim_days_are_skipped_too():
    sim, obs, month = _series()
    sim_nan = sim.copy()
    sim_nan[[5, 6]] = np.nan
    keep = ~np.isnan(sim_nan)
    for name, f in NP_KERNELS.items():
        assert float(f(sim_nan, obs, month)) == pytest.approx(
            float(f(sim[keep], obs[keep], month[keep])), rel=1e-12
        ), name


# --- broadcasting ----------------------------------------------------------------------------


def test_members_against_one_obs_equals_loop():
    rng = np.random.default_rng(3)
    t = 730
    obs = rng.gamma(2.0, 1.0, t)
    obs[rng.random(t) < 0.05] = np.nan
    sim = obs[None, :] * rng.lognormal(0.0, 0.4, (7, t))
    sim[2, 10:20] = np.nan  # one member with its own gaps
    month = pd.date_range("2000-01-01", periods=t).month.to_numpy()
    allscores = K.score_all(sim, obs, month)
    assert set(allscores) == set(O.OBJECTIVES)
    for name, f in NP_KERNELS.items():
        got = f(sim, obs, month)
        assert got.shape == (7,)
        loop = np.array([float(f(sim[i], obs, month)) for i in range(7)])
        np.testing.assert_allclose(got, loop, rtol=1e-12)
        np.testing.assert_allclose(allscores[name], loop, rtol=1e-12)


def test_leading_axes_broadcast():
    rng = np.random.default_rng(4)
    obs = rng.gamma(2.0, 1.0, (3, 50))  # 3 basins
    sim = obs[None] * rng.lognormal(0.0, 0.3, (5, 3, 50))  # 5 members x 3 basins
    got = K.kge_np(sim, obs)
    assert got.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            assert got[i, j] == pytest.approx(float(K.kge_np(sim[i, j], obs[j])), rel=1e-12)
    # one simulated series against several observed ones
    assert K.nse_np(obs[0], obs).shape == (3,)
    with pytest.raises(ValueError, match="last"):
        K.kge_np(sim, obs[:, :40])
    with pytest.raises(ValueError, match="broadcast"):
        K.kge_np(sim, obs[:2])


def test_score_all_subset_and_defaults():
    sim, obs, month = _series()
    res = K.score_all(sim, obs, names=["nse", "kge"])
    assert list(res) == ["nse", "kge"]
    assert "monthly_mean_maxabs" not in K.score_all(sim, obs)  # no month, no monthly score
    with pytest.raises(ValueError, match="month"):
        K.score_all(sim, obs, names=["monthly_mean_maxabs"])
    with pytest.raises(KeyError, match="kgeprime"):
        K.score_all(sim, obs, names=["kg"])


# --- nKGE' -----------------------------------------------------------------------------------


def test_nkgeprime_bounded_and_consistent():
    rng = np.random.default_rng(5)
    obs = rng.gamma(2.0, 1.0, 365)
    # from nearly perfect to hopeless (huge bias and variability errors)
    factors = np.array([1.0, 1.01, 1.5, 3.0, 10.0, 1e3, 1e6])[:, None]
    sim = obs[None] * factors + rng.normal(0, 0.1, (7, 365)) * factors
    k = K.kgeprime_np(sim, obs)
    nk = K.nkgeprime_np(sim, obs)
    np.testing.assert_allclose(nk, k / (2 - k), rtol=1e-12)
    assert np.all(nk > -1) and np.all(nk <= 1)
    assert k.min() < -100  # the hopeless members are far below -1 in KGE'
    assert np.all(np.diff(nk) < 0)  # the normalisation keeps the order


# --- hypothesis property ---------------------------------------------------------------------

_flows = st.lists(st.floats(0.0, 100.0, allow_nan=False, width=64), min_size=4, max_size=40)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), scale=st.floats(1e-2, 1e3))
def test_scaling_invariance(data, scale):
    obs = np.array(data.draw(_flows))
    sim = np.array(data.draw(st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=obs.size,
                                      max_size=obs.size)))
    # keep away from the (near-)degenerate series, where the score is NaN on purpose
    assume(obs.std() > 1e-3 * (1 + obs.mean()) and sim.std() > 1e-3 * (1 + sim.mean()))
    for f in (K.kge_np, K.kgeprime_np, K.nkgeprime_np, K.nse_np, K.lognse_np):
        np.testing.assert_allclose(f(sim * scale, obs * scale), f(sim, obs), rtol=1e-7, atol=1e-9)
    for f in (K.mae_np, K.rmse_np):
        np.testing.assert_allclose(f(sim * scale, obs * scale), scale * f(sim, obs), rtol=1e-9,
                                   atol=1e-12)


# --- edge cases ------------------------------------------------------------------------------


def _all_nan(sim, obs, names=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (divide by zero, invalid value)
        res = K.score_all(sim, obs, np.ones(np.shape(obs)[-1], int), names, **kw)
    return {n: bool(np.all(np.isnan(v))) for n, v in res.items()}


def test_too_few_valid_days_is_nan():
    obs = np.array([1.0, np.nan, np.nan, 3.0])
    sim = np.array([np.nan, 2.0, 2.0, 2.5])
    assert all(_all_nan(sim, obs).values())  # a single valid day
    assert all(_all_nan(np.full(4, np.nan), obs).values())
    assert all(_all_nan(np.zeros(0), np.zeros(0)).values())
    # min_valid: 4 valid days, asking for 5 gives NaN everywhere
    assert all(_all_nan(SIM, OBS, min_valid=5).values())
    assert not any(_all_nan(SIM, OBS, min_valid=4).values())
    with pytest.raises(ValueError, match="min_valid"):
        K.kge_np(SIM, OBS, min_valid=0)


def test_constant_obs_is_nan():
    nan = _all_nan(SIM, np.full(4, 2.0))
    for name in ("kge", "kgeprime", "nkgeprime", "nse", "lognse"):
        assert nan[name], name
    for name in ("mae", "rmse", "monthly_mean_maxabs"):
        assert not nan[name], name
    # round-off constant (0.1 is not exact in binary): still treated as zero variance
    assert np.isnan(K.nse_np(SIM, np.full(4, 0.1)))


def test_zero_mean_obs_is_nan():
    nan = _all_nan(SIM, np.zeros(4))
    assert all(nan[n] for n in ("kge", "kgeprime", "nkgeprime", "nse", "lognse"))
    # zero mean with variance (not physical flow, but the formula must not blow up)
    obs = np.array([-1.0, 1.0, -2.0, 2.0])
    nan = _all_nan(SIM, obs)
    assert nan["kge"] and nan["kgeprime"] and nan["lognse"]
    assert not nan["nse"]


def test_constant_sim_has_undefined_correlation():
    sim = np.full(4, 2.5)  # the observed mean
    nan = _all_nan(sim, OBS)
    assert nan["kge"] and nan["kgeprime"] and nan["nkgeprime"]
    assert not (nan["nse"] or nan["lognse"] or nan["mae"] or nan["rmse"])
    assert float(K.nse_np(sim, OBS)) == pytest.approx(0.0, abs=1e-12)  # NSE of the mean is 0


def test_inf_is_not_a_missing_day():
    sim = SIM.copy()
    sim[0] = np.inf
    with np.errstate(all="ignore"):
        res = K.score_all(sim, OBS, MONTH)
    for name, v in res.items():
        assert np.isnan(v), name  # spoiled, never a good score, never inf


# --- registry --------------------------------------------------------------------------------


def test_registry():
    assert set(O.OBJECTIVES) == {"kge", "kgeprime", "nkgeprime", "nse", "lognse", "mae", "rmse",
                                 "monthly_mean_maxabs"}
    for name in O.OBJECTIVES:
        obj = O.OBJECTIVES[name]
        assert obj.name == name
        assert obj.units in ("1", "mm day-1")
        assert obj.sense in ("max", "min")
        assert obj.best == (1.0 if obj.sense == "max" else 0.0)
        assert obj.units == ("1" if obj.sense == "max" else "mm day-1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        O.OBJECTIVES["kge"].best = 2.0
    with pytest.raises(KeyError) as e:
        O.get_objective("klinggupta")
    assert "klinggupta" in str(e.value) and "nkgeprime" in str(e.value) and "rmse" in str(e.value)
    with pytest.raises(KeyError, match="known objectives"):
        O.as_loss("nope", 1.0)


def test_registry_is_the_one_mechanism_and_keeps_the_canonical_order():
    from lsegeo.errors import UnknownNameError
    from lsegeo.registry import Registry

    assert isinstance(O.OBJECTIVES, Registry) and O.OBJECTIVES.kind == "objective"
    assert O.OBJECTIVES.check("kge") == "kge"
    with pytest.raises(UnknownNameError, match="known objectives: kge, kgeprime"):
        O.get_objective("klinggupta")
    canonical = ["kge", "kgeprime", "nkgeprime", "nse", "lognse", "mae", "rmse", "monthly_mean_maxabs"]
    assert O.default_names() == canonical == list(K.SCORE_NAMES)
    assert O.default_names(with_month=False) == canonical[:-1]
    sim, obs = SIM[None, :], OBS
    assert list(K.score_all(sim, obs)) == canonical[:-1]
    assert list(K.score_all(sim, obs, MONTH)) == canonical


def test_bounded_efficiency():
    k = np.array([-np.inf, -3.0, 0.0, 0.5, 1.0, np.nan])
    with np.errstate(invalid="ignore"):
        b = K.bounded_efficiency(k)
    np.testing.assert_allclose(b[1:5], [-0.6, 0.0, 1 / 3, 1.0])
    assert b[0] == -1.0 or np.isnan(b[0])  # the limit -1 is reached only at -inf
    assert np.isnan(b[-1])
    np.testing.assert_allclose(K.nkgeprime_np(SIM, OBS), K.bounded_efficiency(K.kgeprime_np(SIM, OBS)))


def test_as_loss():
    assert O.as_loss("nkgeprime", 0.25) == pytest.approx(0.75)
    assert O.as_loss("kge", -0.5) == pytest.approx(1.5)
    np.testing.assert_allclose(O.as_loss("rmse", np.array([0.0, 2.0])), [0.0, 2.0])
    assert np.isnan(O.as_loss("nse", np.nan))
    x = xr.DataArray([0.5, 1.0], dims="member")
    assert isinstance(O.as_loss("kgeprime", x), xr.DataArray)
    # lower loss is always the better simulation
    sim, obs, month = _series()
    good, bad = obs * 1.05, obs * 2.0
    for name, f in NP_KERNELS.items():
        assert O.as_loss(name, f(good, obs, month)) < O.as_loss(name, f(bad, obs, month)), name


# --- xarray and dask layer -------------------------------------------------------------------


def _xr_case(chunks=None):
    rng = np.random.default_rng(6)
    time = pd.date_range("2001-01-01", periods=400, name="time")
    obs = rng.gamma(2.0, 1.0, (3, 400))
    obs[rng.random((3, 400)) < 0.05] = np.nan
    sim = obs[None] * rng.lognormal(0.0, 0.3, (4, 3, 400))
    coords = {"basin": ["a", "b", "c"], "time": time}
    obs_da = xr.DataArray(obs, dims=("basin", "time"), coords=coords, name="qobs")
    sim_np = sim
    if chunks is not None:
        sim = da.from_array(sim, chunks=chunks)
    sim_da = xr.DataArray(sim, dims=("member", "basin", "time"),
                          coords={"member": np.arange(4), **coords}, name="qsim")
    return sim_da, obs_da, sim_np, obs, time.month.to_numpy()


@pytest.mark.parametrize("name", list(O.OBJECTIVES))
def test_xarray_layer_equals_numpy(name):
    sim_da, obs_da, sim, obs, month = _xr_case()
    fx = getattr(X, name)
    res = fx(sim_da, obs_da)  # month from the time coordinate for the monthly score
    assert res.dims == ("member", "basin")
    assert res.name == name
    assert res.attrs["units"] == O.OBJECTIVES[name].units
    assert res.attrs["long_name"] == O.OBJECTIVES[name].long_name
    np.testing.assert_allclose(res.values, O.OBJECTIVES[name].func(sim, obs, month), rtol=1e-12)


def test_xarray_on_dask_is_lazy():
    sim_da, obs_da, sim, obs, month = _xr_case(chunks=(2, 3, 100))  # chunked along time too
    res = X.kge(sim_da, obs_da.chunk({"basin": 1}))
    assert isinstance(res.data, da.Array)
    np.testing.assert_allclose(res.compute(scheduler="synchronous").values, K.kge_np(sim, obs),
                               rtol=1e-12)
    ds = X.evaluate(sim_da, obs_da, ["nse", "monthly_mean_maxabs"])
    assert all(isinstance(v.data, da.Array) for v in ds.data_vars.values())
    out = ds.compute(scheduler="synchronous")
    np.testing.assert_allclose(out.nse.values, K.nse_np(sim, obs), rtol=1e-12)
    np.testing.assert_allclose(out.monthly_mean_maxabs.values,
                               K.monthly_mean_maxabs_np(sim, obs, month), rtol=1e-12)
    assert out.monthly_mean_maxabs.attrs["units"] == "mm day-1"


def test_evaluate_and_xarray_errors():
    sim_da, obs_da, sim, obs, month = _xr_case()
    ds = X.evaluate(sim_da, obs_da)
    assert set(ds.data_vars) == set(O.OBJECTIVES)
    for name, v in K.score_all(sim, obs, month).items():
        np.testing.assert_allclose(ds[name].values, v, rtol=1e-12)
    # no datetime coordinate: all scores but the monthly one, unless month is given
    plain_s, plain_o = sim_da.drop_vars("time"), obs_da.drop_vars("time")
    assert "monthly_mean_maxabs" not in X.evaluate(plain_s, plain_o)
    with pytest.raises(ValueError, match="month"):
        X.monthly_mean_maxabs(plain_s, plain_o)
    got = X.monthly_mean_maxabs(plain_s, plain_o, month=month)
    np.testing.assert_allclose(got.values, K.monthly_mean_maxabs_np(sim, obs, month), rtol=1e-12)
    # time coordinates must match exactly; dimension must exist
    with pytest.raises(ValueError):
        X.nse(sim_da, obs_da.assign_coords(time=obs_da.time + np.timedelta64(1, "D")))
    with pytest.raises(ValueError, match="dimension"):
        X.nse(sim_da, obs_da, dim="day")
    with pytest.raises(TypeError):
        X.nse(sim, obs)


# ---------------------------------------------------------------------------------------------
# coverage of a period by observations: the rule that leaves a score out (lsegeo.periods)


def test_period_coverage_counts_observed_days_per_period():
    from lsegeo.periods import coverage_note, covered, period_coverage

    obs = np.ones((2, 730))
    obs[0, :365][np.setdiff1d(np.arange(365), np.arange(0, 365, 21)[:17])] = np.nan  # 17 of 365 observed
    obs[1, 365:] = np.nan  # nothing observed in the second year
    slices = {"calibration": slice(0, 365), "test": slice(365, 730)}
    cov = period_coverage(obs, slices)
    assert cov.shape == (2, 2)
    np.testing.assert_allclose(cov, [[17 / 365, 1.0], [1.0, 0.0]], rtol=0, atol=1e-15)
    assert covered(292 / 365, 0.8) and not covered(291 / 365, 0.8)  # 292 of 365 is 0.8 (up to round-off)
    assert coverage_note("calibration", cov[0, 0], 365, 0.8) == (
        "not scored: 17 observed day(s) of 365 in the calibration period (coverage 0.047 < min_coverage 0.8)")
    assert coverage_note("test", cov[0, 1], 365, 0.8) == ""
    assert "0 observed day(s) of 365 in the test period" in coverage_note("test", cov[1, 1], 365, 0.8)
