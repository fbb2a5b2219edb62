"""Tests of the embedded HBV model (lsegeo.models.hbv: kernel, simulate, reference, adapter).

Forcing is the real CAMELS Daymet forcing of three contrasting basins, read from the CAMELS
files of the data directory, with Priestley-Taylor PET (lsegeo.ingest.pet), as the ingest computes it:

* 01022500 (Narraguagus River, Maine): humid, seasonal snow (P/PET about 1.8);
* 07083000 (Halfmoon Creek, Colorado): the coldest CAMELS basin (mean T about -1.2 degC);
* 10259200: the driest CAMELS basin (PET/P about 4.1).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsegeo.design import latin_hypercube
from lsegeo.ingest.pet import priestley_taylor
from lsegeo.io.camels import read_forcing
from lsegeo.models.hbv import kernel, simulate
from lsegeo.models.hbv.adapter import HBV_SPACE
from lsegeo.models.hbv.reference import simulate_basin_numpy

BASINS = {"humid": "01022500", "cold": "07083000", "dry": "10259200"}
VARS = ("prcp", "tmax", "tmin", "pet")
N_DAYS = 11 * 365 + 3  # 1980-01-01 .. 1990-12-31 (11 years: one of warm-up, then ten)
WARMUP = 366


@pytest.fixture(scope="module")
def forcing(camels) -> dict[str, dict[str, np.ndarray]]:
    """{kind: {variable: (N_DAYS,) float64}} for the three basins, from 1980-01-01."""
    out = {}
    for kind, gauge in BASINS.items():
        f = read_forcing(camels.forcing_path(gauge))
        d = f.data.iloc[:N_DAYS]
        pet = priestley_taylor(d.tmax, d.tmin, d.srad, d.dayl, d.vp, d.index.day_of_year.to_numpy(), f.lat, f.elev)
        out[kind] = {"prcp": d.prcp.to_numpy(), "tmax": d.tmax.to_numpy(), "tmin": d.tmin.to_numpy(), "pet": pet}
    return out


def _args(f: dict[str, np.ndarray], n: int | None = None):
    return tuple(f[v][:n] for v in VARS)


# -------------------------------------------------------------------------------------------
# parameter space


def test_space_matches_model():
    assert HBV_SPACE.name == "hbv"
    assert len(HBV_SPACE) == kernel.N_PARAMS == 14
    assert HBV_SPACE["FC"].scale == "log" and HBV_SPACE["K2"].scale == "log"
    assert (HBV_SPACE["MAXBAS"].lower, HBV_SPACE["MAXBAS"].upper) == (1.0, 7.0)
    for p in HBV_SPACE.parameters:
        assert p.source and p.description and p.units
    kernel.check_params(HBV_SPACE.lower)
    kernel.check_params(HBV_SPACE.upper)
    kernel.check_params(HBV_SPACE.default)


# -------------------------------------------------------------------------------------------
# (a) water balance


@pytest.mark.parametrize("kind", list(BASINS))
def test_water_balance_closes(forcing, kind):
    """input - ET - Q - dS = 0 to rounding, for 50 parameter sets drawn within the bounds."""
    params = latin_hypercube(HBV_SPACE, 50, seed=20240501)
    q, bal = simulate.simulate_basin(*_args(forcing[kind]), params, warmup_days=WARMUP, return_states=True)
    assert q.shape == (50, N_DAYS - WARMUP)
    np.testing.assert_allclose(bal["runoff"], q.sum(axis=1), rtol=1e-12)
    scale = bal["input"].max()
    assert scale > 0
    assert np.abs(bal["balance_error"]).max() < 1e-8 * scale
    # every term recomputed from its parts
    storage = sum(bal[k] for k in ("snow", "liquid", "soil", "upper", "lower", "routing"))
    np.testing.assert_allclose(storage, bal["storage_end"], rtol=1e-12, atol=1e-12)
    for k in ("snow", "liquid", "soil", "upper", "lower", "routing", "et"):
        assert (bal[k] >= 0).all(), k
    # corrected input: SFCF multiplies snowfall only, so input lies between P and SFCF_max * P
    p_sum = forcing[kind]["prcp"][WARMUP:].sum()
    sfcf = params[:, HBV_SPACE.names.index("SFCF")]
    assert (bal["input"] >= p_sum * (1 - 1e-12)).all()
    assert (bal["input"] <= sfcf * p_sum * (1 + 1e-12)).all()
    # soil never above FC
    assert (bal["soil"] <= params[:, HBV_SPACE.names.index("FC")] * (1 + 1e-12)).all()


def test_water_balance_without_warmup(forcing):
    params = latin_hypercube(HBV_SPACE, 10, seed=3)
    _, bal = simulate.simulate_basin(*_args(forcing["cold"], 1000), params, return_states=True,
                                initial_soil_moisture=0.8)
    np.testing.assert_allclose(bal["storage_start"], 0.8 * params[:, HBV_SPACE.names.index("FC")])
    assert np.abs(bal["balance_error"]).max() < 1e-8 * bal["input"].max()


# -------------------------------------------------------------------------------------------
# (b) property test: any parameter set within bounds gives finite, non-negative flow

member = st.tuples(*[st.floats(min_value=p.lower, max_value=p.upper, allow_nan=False, allow_infinity=False)
                     for p in HBV_SPACE.parameters])


@settings(max_examples=60, deadline=None)
@given(members=st.lists(member, min_size=1, max_size=4), kind=st.sampled_from(sorted(BASINS)))
def test_no_nan_no_negative_flow(forcing, members, kind):
    params = np.array(members)
    q, bal = simulate.simulate_basin(*_args(forcing[kind], 3 * 365), params, warmup_days=30, return_states=True)
    assert np.isfinite(q).all()
    assert (q >= 0).all()
    for k, v in bal.items():
        assert np.isfinite(v).all(), k
    assert np.abs(bal["balance_error"]).max() <= 1e-8 * max(bal["input"].max(), 1.0)


def test_every_corner_of_the_box(forcing):
    """All 2**14 combinations of lower/upper bounds: finite, non-negative flow, closed balance."""
    corners = np.array(list(itertools.product(*[(p.lower, p.upper) for p in HBV_SPACE.parameters])))
    q, bal = simulate.simulate_basin(*_args(forcing["humid"], 2 * 365), corners, return_states=True)
    assert np.isfinite(q).all() and (q >= 0).all()
    assert np.abs(bal["balance_error"]).max() < 1e-8 * bal["input"].max()
    for k in ("snow", "liquid", "soil", "upper", "lower", "routing"):
        assert (bal[k] >= 0).all(), k


# -------------------------------------------------------------------------------------------
# (c) numba kernel == numpy reference


@pytest.mark.parametrize("kind", list(BASINS))
def test_numba_equals_numpy_reference(forcing, kind):
    params = latin_hypercube(HBV_SPACE, 24, seed=7)
    # the corners where the upper-zone cap and the full-soil overflow are active
    params[1, HBV_SPACE.names.index("K0")] = 0.99
    params[1, HBV_SPACE.names.index("K1")] = 0.8
    params[2, HBV_SPACE.names.index("FC")] = 50.0
    args = _args(forcing[kind], 4 * 365)
    q, bal = simulate.simulate_basin(*args, params, warmup_days=365, return_states=True)
    qr, balr = simulate_basin_numpy(*args, params, warmup_days=365, return_states=True)
    assert np.abs(q - qr).max() < 1e-10
    assert bal.keys() == balr.keys()
    for k in bal:
        assert np.abs(bal[k] - balr[k]).max() < 1e-10 * max(1.0, np.abs(balr[k]).max()), k


def test_batch_equals_per_basin(forcing):
    kinds = sorted(BASINS)
    stack = {v: np.stack([forcing[k][v][:800] for k in kinds]) for v in VARS}
    params = np.stack([latin_hypercube(HBV_SPACE, 5, seed=s) for s in range(len(kinds))])
    qb = simulate.simulate_batch(*(stack[v] for v in VARS), params, warmup_days=100)
    assert qb.shape == (3, 5, 700)
    for i, k in enumerate(kinds):
        np.testing.assert_array_equal(qb[i], simulate.simulate_basin(*_args(forcing[k], 800), params[i],
                                                                     warmup_days=100))
    # shared members broadcast over basins; float32 output
    q32 = simulate.simulate_batch(*(stack[v] for v in VARS), params[0], dtype=np.float32)
    assert q32.dtype == np.float32 and q32.shape == (3, 5, 800)
    np.testing.assert_allclose(q32[0], simulate.simulate_basin(*_args(forcing[kinds[0]], 800), params[0]), rtol=1e-6,
                               atol=1e-6)


# -------------------------------------------------------------------------------------------
# (d) routing weights


def test_triangular_weights_sum_to_one():
    maxbas = np.linspace(1.0, 7.0, 601)
    w = kernel.triangular_weights(maxbas)
    assert w.shape == (601, kernel.N_ROUTE)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    assert (w >= 0).all()
    # no weight beyond ceil(MAXBAS) days; MAXBAS = 1 is no delay; MAXBAS = 2 halves
    for b, wb in zip(maxbas, w, strict=True):
        assert (wb[int(np.ceil(b)):] == 0).all()
    np.testing.assert_array_equal(kernel.triangular_weights(1.0), [1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(kernel.triangular_weights(2.0), [0.5, 0.5, 0, 0, 0, 0, 0])
    # continuous in MAXBAS: a small change gives a small change
    assert np.abs(np.diff(w, axis=0)).max() < 0.02
    with pytest.raises(ValueError, match="MAXBAS"):
        kernel.triangular_weights(7.5)


def test_kernel_routing_is_the_triangular_convolution(forcing):
    """Routing is linear and downstream of everything else: q(MAXBAS) = q(MAXBAS=1) * w(MAXBAS)."""
    base = np.tile(HBV_SPACE.default, (4, 1))
    i = HBV_SPACE.names.index("MAXBAS")
    base[:, i] = [1.0, 2.7, 4.0, 7.0]
    q = simulate.simulate_basin(*_args(forcing["humid"], 500), base)
    for m in range(1, 4):
        expect = np.convolve(q[0], kernel.triangular_weights(base[m, i]))[:500]
        np.testing.assert_allclose(q[m], expect, rtol=1e-12, atol=1e-12)


# -------------------------------------------------------------------------------------------
# (e) snow


def test_cold_forcing_accumulates_snow_only(forcing):
    prcp = forcing["humid"]["prcp"][:730]
    cold = np.full(prcp.shape, -10.0)
    params = latin_hypercube(HBV_SPACE, 20, seed=11)
    q, bal = simulate.simulate_basin(prcp, cold, cold, forcing["humid"]["pet"][:730], params, return_states=True)
    assert (q == 0).all()
    sfcf = params[:, HBV_SPACE.names.index("SFCF")]
    np.testing.assert_allclose(bal["snow"], sfcf * prcp.sum(), rtol=1e-12)
    np.testing.assert_allclose(bal["input"], sfcf * prcp.sum(), rtol=1e-12)
    assert (bal["liquid"] == 0).all()
    assert (bal["upper"] == 0).all() and (bal["lower"] == 0).all() and (bal["routing"] == 0).all()


def test_melt_rate_and_retention():
    """A 100 mm snowpack built on cold days melts at CFMAX * (T - TT) and retains CWH of it."""
    names = HBV_SPACE.names
    p = HBV_SPACE.default.copy()
    p[names.index("TT")], p[names.index("CFMAX")], p[names.index("CWH")] = 0.0, 3.0, 0.1
    prcp = np.array([100.0, 0.0])
    temp = np.array([-5.0, 4.0])
    _, bal = simulate.simulate_basin(prcp, temp, temp, np.zeros(2), p, return_states=True)
    melt = 3.0 * 4.0
    assert bal["snow"][0] == pytest.approx(100.0 - melt)
    assert bal["liquid"][0] == pytest.approx(0.1 * (100.0 - melt))
    assert bal["soil"][0] + bal["upper"][0] + bal["lower"][0] + bal["routing"][0] + bal["runoff"][0] == \
        pytest.approx(0.5 * p[names.index("FC")] + melt - 0.1 * (100.0 - melt))


# -------------------------------------------------------------------------------------------
# (f) plausibility of the default parameter set


def test_default_runoff_ratio_humid_basin(forcing):
    f = forcing["humid"]
    q, bal = simulate.simulate_basin(*_args(f), HBV_SPACE.default, warmup_days=WARMUP, return_states=True)
    ratio = q.sum() / f["prcp"][WARMUP:].sum()
    assert 0.3 < ratio < 0.9, ratio
    assert 0.1 < bal["et"][0] / bal["input"][0] < 0.7


# -------------------------------------------------------------------------------------------
# errors and adapter


def test_nan_forcing_is_an_error_naming_the_variable(forcing):
    args = [a.copy() for a in _args(forcing["humid"], 100)]
    args[3][50] = np.nan
    with pytest.raises(ValueError, match="pet"):
        simulate.simulate_basin(*args, HBV_SPACE.default)
    args[3][50] = 1.0
    args[1][7] = np.nan
    with pytest.raises(ValueError, match="tmax"):
        simulate_basin_numpy(*args, HBV_SPACE.default)


def test_invalid_parameters_are_errors(forcing):
    p = HBV_SPACE.default.copy()
    p[HBV_SPACE.names.index("MAXBAS")] = 8.0
    with pytest.raises(ValueError, match="MAXBAS"):
        simulate.simulate_basin(*_args(forcing["humid"], 10), p)
    with pytest.raises(ValueError, match="members, 14"):
        simulate.simulate_basin(*_args(forcing["humid"], 10), np.ones((2, 13)))


def test_adapter_is_registered(forcing):
    from lsegeo.models.registry import get_model

    model = get_model("hbv")
    assert model.space is HBV_SPACE
    f = {v: forcing["humid"][v][:200] for v in model.forcing_variables}
    q = model.run(f, HBV_SPACE.default[None, :])
    np.testing.assert_array_equal(q, simulate.simulate_basin(*_args(forcing["humid"], 200), HBV_SPACE.default))


def test_batch_runner_is_the_adapters_fast_path(forcing):
    """The runner keeps the checked forcing and repeats the warm-up in every batch, bit for bit."""
    from lsegeo.models.protocol import BatchRunner, ModelAdapter
    from lsegeo.models.registry import get_model

    model = get_model("hbv")
    assert isinstance(model, ModelAdapter)
    f = {v: forcing["cold"][v][:900] for v in model.forcing_variables}
    runner = model.runner(f, warmup_days=300)
    assert isinstance(runner, BatchRunner) and runner.days == 600
    for seed in (1, 2):  # batches of new members on the same runner: nothing carries over between them
        params = latin_hypercube(HBV_SPACE, 4, seed=seed)
        expected = simulate.simulate_basin(*_args(forcing["cold"], 900), params, warmup_days=300)
        np.testing.assert_array_equal(runner.run(params), expected)
        np.testing.assert_array_equal(runner.submit(params).result(), expected)
    # several basins in one runner: the batch driver's result
    kinds = sorted(BASINS)
    stack = {v: np.stack([forcing[k][v][:500] for k in kinds]) for v in VARS}
    params = np.stack([latin_hypercube(HBV_SPACE, 3, seed=s) for s in range(len(kinds))])
    many = model.runner(stack, warmup_days=100)
    assert many.basins == 3 and many.days == 400
    np.testing.assert_array_equal(many.run(params),
                                  simulate.simulate_batch(*(stack[v] for v in VARS), params, warmup_days=100))
    with pytest.raises(ValueError, match="basin index 1: .*MAXBAS"):
        bad = params.copy()
        bad[1, 0, HBV_SPACE.names.index("MAXBAS")] = 9.0
        many.run(bad)
    with pytest.raises(KeyError, match="pet"):
        model.runner({v: f[v] for v in ("prcp", "tmax", "tmin")})
    nan = dict(f, tmin=f["tmin"].copy())
    nan["tmin"][10] = np.nan
    with pytest.raises(ValueError, match="tmin"):
        model.runner(nan, warmup_days=300)

