"""Tests of lsegeo.metrics.fused: the fused numba scores equal the numpy reference kernels.

Random members with NaN days, constant and degenerate series, every registered objective,
several periods (overlapping, short, empty), the runner's ``score_members`` with its coverage
rule, and numba's cache loaded by a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lsegeo.ensembles.runner import score_members
from lsegeo.metrics import kernels as K
from lsegeo.metrics.fused import FUSED_NAMES, fused_kernel_stats, score_periods
from lsegeo.metrics.objectives import OBJECTIVES
from lsegeo.periods import covered, period_coverage

RTOL, ATOL = 1e-10, 1e-12
T = 730
MONTH = (np.arange(T) // 31) % 12 + 1  # 31-day "months", every calendar month twice
PERIODS = {"all": slice(0, T), "first": slice(0, 400), "late": slice(365, T), "short": slice(100, 101),
           "empty": slice(200, 200)}


def _members(seed: int = 0, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """``(n, T)`` simulated and ``(T,)`` observed flow with NaN days and degenerate members."""
    rng = np.random.default_rng(seed)
    base = np.exp(rng.normal(0.0, 1.0, T)) * (1.5 + np.sin(np.arange(T) * 2 * np.pi / 365))
    obs = base.copy()
    obs[rng.random(T) < 0.1] = np.nan  # scattered missing days
    obs[500:530] = np.nan  # and a gap
    obs[300] = base[300]  # observed on the day member 6 blows up
    sim = base[None, :] * rng.uniform(0.5, 1.5, (n, 1)) + rng.normal(0, 0.3, (n, T)) ** 2
    sim[1] = 2.0  # a constant simulation
    sim[2] = 0.0  # a dried-out model
    sim[3, rng.random(T) < 0.2] = np.nan  # a member with its own missing days
    sim[4] = np.nan  # a member without any valid day
    sim[5, 10:20] = -1e-9  # numerical noise below zero (clipped before the log)
    sim[6, 300] = np.inf  # a blown-up simulation
    sim[7] = obs  # perfect (NaN days too)
    sim[8, :] = np.where(np.isnan(obs), 1.0, np.nan)  # valid only where obs is missing
    return sim, obs


def _reference(sim, obs, month, slices, names, min_valid=K.DEFAULT_MIN_VALID) -> np.ndarray:
    """``(member, period, name)`` scores of the numpy kernels, one registered function per name."""
    out = np.empty((sim.shape[0], len(slices), len(names)))
    with np.errstate(invalid="ignore"):  # inf - inf of the blown-up member
        for k, sl in enumerate(slices.values()):
            for j, name in enumerate(names):
                out[:, k, j] = OBJECTIVES[name].func(sim[:, sl], obs[sl], month[sl], min_valid=min_valid)
    return out


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))  # the same NaN, value by value
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_fused_names_are_the_kernels_scores_and_cover_every_objective():
    assert FUSED_NAMES == K.SCORE_NAMES
    assert set(OBJECTIVES.names()) <= set(FUSED_NAMES)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_the_reference_on_random_members_with_nan_days(seed):
    sim, obs = _members(seed)
    names = list(OBJECTIVES.names())
    got = score_periods(sim, obs, MONTH, PERIODS, names)
    want = _reference(sim, obs, MONTH, PERIODS, names)
    assert got.shape == (sim.shape[0], len(PERIODS), len(names))
    _assert_same(got, want)
    # the degenerate members give what the module notes say, in both
    j = {n: i for i, n in enumerate(names)}
    assert np.isnan(got[1, 0, j["kge"]]) and np.isfinite(got[1, 0, j["nse"]])  # constant sim: r undefined
    assert np.isnan(got[4]).all() and np.isnan(got[6, [0, 1]]).all()  # no valid day; inf spoils its periods
    assert np.isfinite(got[6, 2]).all()  # the inf day (300) is not in "late"
    np.testing.assert_allclose(got[7, 0, [j["kge"], j["nse"], j["lognse"], j["mae"]]], [1, 1, 1, 0], atol=1e-12)
    assert np.isnan(got[:, 3:]).all()  # one day (< min_valid) and no day
    assert np.isnan(got[8]).all()


def test_default_names_order_and_subsets():
    sim, obs = _members(3, n=10)
    full = score_periods(sim, obs, MONTH, PERIODS)
    assert full.shape[-1] == len(FUSED_NAMES)
    sub = score_periods(sim, obs, None, list(PERIODS.values()), ["rmse", "kge"])  # no month needed
    np.testing.assert_array_equal(sub, full[:, :, [FUSED_NAMES.index("rmse"), FUSED_NAMES.index("kge")]])
    _assert_same(score_periods(sim, obs, MONTH, PERIODS, ["lognse"], min_valid=300),
                 _reference(sim, obs, MONTH, PERIODS, ["lognse"], min_valid=300))


def test_degenerate_observations():
    rng = np.random.default_rng(7)
    sim = rng.uniform(0.5, 2.0, (5, T))
    for obs in (np.full(T, 3.0), np.zeros(T), np.full(T, np.nan), np.where(rng.random(T) < 0.5, 0.0, -1.0)):
        _assert_same(score_periods(sim, obs, MONTH, PERIODS), _reference(sim, obs, MONTH, PERIODS, FUSED_NAMES))
    obs = np.full(T, 3.0)
    assert np.isnan(score_periods(sim, obs, MONTH, PERIODS, ["nse", "kge", "lognse"])).all()


def test_score_members_equals_the_reference_with_the_coverage_rule():
    sim, obs = _members(4)
    obs[365:] = np.where(np.arange(T - 365) % 3 == 0, obs[365:], np.nan)  # "late" covered about 1/3
    slices = {"all": PERIODS["all"], "first": PERIODS["first"], "late": PERIODS["late"]}
    names = ["kgeprime", "nkgeprime", "kge", "nse", "lognse", "mae", "rmse", "monthly_mean_maxabs"]
    got = score_members(sim, obs, MONTH, slices, names)
    want = _reference(sim, obs, MONTH, slices, names)
    ok = covered(period_coverage(obs, slices), 0.8)
    assert not ok[2] and ok[1]
    want[:, ~ok, :] = np.nan
    _assert_same(got, want)
    assert np.isnan(score_members(sim, obs, MONTH, slices, names, min_coverage=1.0)).all()


def test_bad_inputs_are_refused():
    sim, obs = _members(5, n=10)
    with pytest.raises(KeyError, match="no fused kernel"):
        score_periods(sim, obs, MONTH, PERIODS, ["kge", "bias"])
    with pytest.raises(ValueError, match="month"):
        score_periods(sim, obs, None, PERIODS, ["monthly_mean_maxabs"])
    with pytest.raises(ValueError, match="1..12"):
        score_periods(sim, obs, MONTH + 1, PERIODS)
    with pytest.raises(ValueError, match="step 1"):
        score_periods(sim, obs, MONTH, [slice(0, T, 2)])
    with pytest.raises(ValueError, match="same T"):
        score_periods(sim[:, :-1], obs, MONTH, PERIODS, ["kge"])
    with pytest.raises(ValueError, match="min_valid"):
        score_periods(sim, obs, MONTH, PERIODS, min_valid=0)


def test_a_fresh_process_loads_the_compiled_kernels_from_the_cache():
    sim, obs = _members(6, n=10)
    score_periods(sim, obs, MONTH, PERIODS)  # compiles (or loads) and writes numba's cache
    assert sum(fused_kernel_stats().values()) > 0
    code = ("import json, numpy as np; from lsegeo.metrics.fused import score_periods, fused_kernel_stats; "
            "s = score_periods(np.ones((2, 40)) + np.arange(40), np.arange(40.0), np.ones(40, int), [slice(0, 40)]); "
            "print(json.dumps(fused_kernel_stats()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["cache_misses"] == 0 and stats["cache_hits"] > 0
