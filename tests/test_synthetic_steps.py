"""Unit tests of the pipeline's steps on lsegeo.testing's synthetic data, with known answers.

* the batched optimiser finds every basin's optimum of an analytic emulator;
* Sobol' indices on that emulator match their closed form;
* KGE', NSE and the bounded KGE' of constructed series have their textbook values;
* HBV run on synthetic forcing is finite, non-negative and deterministic;
* DDS on a synthetic basin, whose flow is HBV with known parameters, gets close to a perfect fit;
* the large-sample emulator fits the synthetic ensemble and predicts finite scores for every
  basin, the withheld one included;
* given-data first-order indices come out of the synthetic ensemble (NaN for the withheld basin).
"""

from __future__ import annotations

import numpy as np
import pytest

from lsegeo.metrics.kernels import kgeprime_np, nkgeprime_np, nse_np
from lsegeo.models.registry import get_model
from lsegeo.optimise.proposals import propose
from lsegeo.periods import period_slices, simulation_window
from lsegeo.testing import PERIODS, WARMUP_DAYS, QuadraticBowl, synthetic_basins

D = 5


@pytest.fixture(scope="module")
def bowl(synthetic):
    rows = np.column_stack([synthetic.attributes[n].values for n in ("p_mean", "aridity", "frac_snow")])
    return QuadraticBowl(rows, [f"p{i}" for i in range(D)], basins=synthetic.basins, seed=0)


# ------------------------------------------------------------------------------------------------
# optimiser and sensitivity on the analytic emulator
# ------------------------------------------------------------------------------------------------


def test_batched_optimiser_finds_every_basins_known_optimum(bowl):
    calls = []

    def predict(b, u):
        calls.append(len(u))
        return bowl.predict(b, u)

    idx = np.arange(len(bowl.basins))
    res = propose(predict, idx, D, ["max"], 4, pop_size=40, n_gen=40, n_restarts=2, seed=0, engine="numpy",
                  local_share=0.0)
    assert res.u.shape == (len(idx), 4, D)
    assert len(calls) == 40                                       # one emulator call per generation
    for b in idx:
        best = res.u[b, 0]
        assert np.abs(best - bowl.optimum(b)).max() < 0.05, (b, best, bowl.optimum(b))
        assert bowl.predict(np.array([b]), best[None])[0, 0] > bowl.peak - 1e-3


def test_sobol_indices_of_the_bowl_match_the_closed_form(bowl):
    from lsegeo.sensitivity import sobol_on_emulator

    idx = np.arange(3)
    ds = sobol_on_emulator(bowl, idx, n_base=1024, seed=1, num_resamples=20)
    assert list(ds["basin"].values) == bowl.basins[:3]
    for i in idx:
        s1, st = bowl.sobol_indices(i)
        np.testing.assert_allclose(ds["S1"].values[i], s1, atol=0.04)
        np.testing.assert_allclose(ds["ST"].values[i], st, atol=0.04)
    # the most important parameter is the one with the largest weight and variance term
    assert (ds["ST"].argmax("param").values == [np.argmax(bowl.sobol_indices(i)[1]) for i in idx]).all()


# ------------------------------------------------------------------------------------------------
# scores of constructed series
# ------------------------------------------------------------------------------------------------


def test_kgeprime_nse_of_known_series():
    t = np.arange(730)
    obs = 2.0 + np.sin(2 * np.pi * t / 365.0)
    # scaled by 1.1: r = 1, beta = 1.1, gamma = 1 -> KGE' = 1 - 0.1
    assert kgeprime_np(1.1 * obs, obs) == pytest.approx(0.9)
    # shifted by +0.5: r = 1, beta = (m + 0.5) / m, gamma = m / (m + 0.5) (cv shrinks)
    m = obs.mean()
    expected = 1.0 - np.sqrt(((m + 0.5) / m - 1.0) ** 2 + (m / (m + 0.5) - 1.0) ** 2)
    assert kgeprime_np(obs + 0.5, obs) == pytest.approx(expected)
    # NSE of the mean is 0; NSE of obs + e is 1 - mean(e^2) / var(obs)
    assert nse_np(np.full_like(obs, m), obs) == pytest.approx(0.0, abs=1e-12)
    assert nse_np(obs + 0.1, obs) == pytest.approx(1.0 - 0.01 / obs.var())
    # bounded KGE' = KGE' / (2 - KGE') (Mathevet et al. 2006)
    k = kgeprime_np(1.1 * obs, obs)
    assert nkgeprime_np(1.1 * obs, obs) == pytest.approx(k / (2.0 - k))


# ------------------------------------------------------------------------------------------------
# the model and direct calibration on synthetic basins
# ------------------------------------------------------------------------------------------------


def test_hbv_on_synthetic_forcing_is_finite_and_deterministic(synthetic):
    hbv = get_model("hbv")
    rng = np.random.default_rng(0)
    params = hbv.space.from_unit(rng.random((16, len(hbv.space))))
    forcing = synthetic.forcing_arrays(synthetic.basins[0])
    q = hbv.run(forcing, params)
    assert q.shape == (16, synthetic.forcing.sizes["time"])
    assert np.isfinite(q).all() and (q >= 0).all()
    np.testing.assert_array_equal(hbv.run(forcing, params), q)
    # runoff over three years is less than precipitation: the rest evaporates or is stored
    assert (q.sum(axis=1) < forcing["prcp"].sum()).all()


def test_dds_on_a_synthetic_basin_approaches_a_perfect_fit():
    from lsegeo.calibration.direct import dds_basin

    sb = synthetic_basins(1, seed=4, noise=0.0)
    window = simulation_window(PERIODS, WARMUP_DAYS)
    assert window[0] == sb.forcing["time"].values[0]
    slices = period_slices(window, PERIODS)
    out = dds_basin(sb.forcing_arrays(sb.basins[0]), sb.observed["qobs"].values[0].astype("float64"),
                    slices=slices, budget=300, chains=1, seed=0)
    assert out["best_score"]["calibration"] > max(0.85, out["default_score"]["calibration"])
    assert out["history"].shape == (300,) and np.all(np.diff(out["history"]) >= 0)


# ------------------------------------------------------------------------------------------------
# the large-sample emulator on the synthetic ensemble
# ------------------------------------------------------------------------------------------------


def test_lse_fits_the_synthetic_ensemble_and_predicts_every_basin(synthetic_store, synthetic_ensemble_store):
    from lsegeo.emulators import LargeSampleEmulator, training_set

    ts = training_set(synthetic_ensemble_store, synthetic_store, objectives=("nkgeprime",),
                      attributes=("p_mean", "aridity", "frac_snow", "elev_mean", "dom_land_cover"))
    em = LargeSampleEmulator(seed=0, n_jobs=1, n_estimators=50).fit(ts)
    assert em.basins == ts.basins and em.target_names == ["nkgeprime"]
    u = np.random.default_rng(0).random((10, len(ts.param_names)))
    pred = em.predict(np.full(10, 4), u)                          # the withheld basin: attributes only
    assert pred.shape == (10, 1) and np.isfinite(pred).all()
    fitted = em.predict(ts.basin_index, ts.params_unit)
    assert np.corrcoef(fitted[:, 0], ts.target[:, 0])[0, 1] > 0.8


def test_given_data_indices_from_the_synthetic_ensemble(synthetic_ensemble_store):
    from lsegeo.sensitivity.ensemble import sensitivity_from_ensemble

    ds = sensitivity_from_ensemble(synthetic_ensemble_store, method="binned", num_resamples=0)
    assert ds.sizes == {"basin": 5, "param": 14}
    assert list(ds["n_members"].values) == [20, 20, 20, 20, 0]     # the withheld basin has no scores
    assert np.isfinite(ds["S1"].values[:4]).all() and np.isnan(ds["S1"].values[4]).all()
