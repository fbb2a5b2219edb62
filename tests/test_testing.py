"""lsegeo.testing: the synthetic basins, stores and analytic emulator that the unit tier runs on."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from lsegeo.emulators.features import STUDY_ATTRIBUTES, training_set
from lsegeo.ensembles.store import ensemble_progress, open_ensemble
from lsegeo.errors import StoreError
from lsegeo.io.stores import open_store, read_provenance, root_attrs, store_groups
from lsegeo.models.registry import get_model
from lsegeo.testing import PERIODS, QuadraticBowl, synthetic_basins, write_basins_store
from lsegeo.testing.emulators import bowl_variance_terms, load_bytes


def test_synthetic_basins_are_seeded_and_small(synthetic):
    again = synthetic_basins(5, seed=0, withheld=[4])
    xr.testing.assert_identical(again.forcing, synthetic.forcing)
    xr.testing.assert_identical(again.observed, synthetic.observed)
    other = synthetic_basins(5, seed=1, withheld=[4])
    assert not np.allclose(other.forcing["prcp"].values, synthetic.forcing["prcp"].values)
    assert synthetic.forcing.nbytes < 200_000
    assert synthetic.basins == [f"{90000001 + i:08d}" for i in range(5)]
    assert synthetic.observed_basins == synthetic.basins[:4]


def test_forcing_has_a_seasonal_cycle_and_attributes_agree_with_it(synthetic):
    f = synthetic.forcing
    month = f["time"].dt.month
    t = (0.5 * (f["tmax"] + f["tmin"])).groupby(month).mean()
    assert (t.sel(month=7) - t.sel(month=1) > 8.0).all()          # summer warmer than winter everywhere
    pet = f["pet"].groupby(month).mean()
    assert (pet.sel(month=7) > 2 * pet.sel(month=1)).all()
    assert (f["prcp"] >= 0).all() and (f["pet"] >= 0).all()
    a = synthetic.attributes
    np.testing.assert_allclose(a["p_mean"].values, f["prcp"].mean("time").values, rtol=1e-5)
    np.testing.assert_allclose(a["aridity"].values, a["pet_mean"].values / a["p_mean"].values)
    missing = [n for n in STUDY_ATTRIBUTES if n not in a and {"area_gages2": "area"}.get(n) not in a.coords]
    assert not missing


def test_observed_flow_is_the_model_with_the_true_parameters():
    sb = synthetic_basins(3, seed=2, noise=0.0)
    hbv = get_model("hbv")
    for i, b in enumerate(sb.basins):
        q = hbv.run(sb.forcing_arrays(b), sb.true_params.values[i][None, :])[0]
        np.testing.assert_allclose(sb.observed["qobs"].values[i], q, rtol=1e-6)
    assert sb.true_params.dims == ("basin", "param")
    u = hbv.space.to_unit(sb.true_params.values)
    assert ((u > 0.19) & (u < 0.81)).all()


def test_withheld_basins_have_no_observations(synthetic):
    obs = synthetic.observed
    assert np.isnan(obs["qobs"].values[4]).all() and not obs["has_observations"].values[4]
    assert (obs["n_observed_days"].values[:4] == obs.sizes["time"]).all()
    assert np.isfinite(obs["qobs"].values[:4]).all() and (obs["qobs"].values[:4] >= 0).all()
    with pytest.raises(ValueError, match="withheld"):
        synthetic_basins(2, withheld=[5])


def test_basins_store_round_trip_with_provenance(synthetic, synthetic_store, tmp_path):
    assert store_groups(synthetic_store) == ["attributes", "forcing", "observed"]
    forcing = open_store(synthetic_store, "forcing")
    assert forcing["prcp"].chunks[0] == (2, 2, 1)               # chunk_basins=2, whole series per chunk
    np.testing.assert_array_equal(forcing["prcp"].values, synthetic.forcing["prcp"].values)
    attrs = root_attrs(synthetic_store)
    assert attrs["lsegeo_store_kind"] == "basins"
    assert read_provenance(synthetic_store)                      # a PROV-JSON record in the root
    assert open_store(synthetic_store, "observed").attrs["lsegeo_store_kind"] == "basins"  # copied to groups
    assert (synthetic_store.parent / (synthetic_store.name + ".prov.json")).exists()
    with pytest.raises(StoreError, match="already exists"):
        write_basins_store(synthetic, synthetic_store)


def test_ensemble_store_is_complete_and_trains_an_emulator(synthetic_store, synthetic_ensemble_store):
    assert ensemble_progress(synthetic_ensemble_store) == {"pending": 0, "done": 100, "failed": 0, "total": 100}
    ens = open_ensemble(synthetic_ensemble_store)
    assert [str(p) for p in ens["period"].values] == [p.name for p in PERIODS]
    kge = ens["scores"].sel(period="calibration", objective="kgeprime").values
    assert np.isnan(kge[4]).all()                                 # the withheld basin
    assert np.isfinite(kge[:4]).all() and (kge[:4] <= 1.0).all()
    ts = training_set(synthetic_ensemble_store, synthetic_store)
    assert ts.params_unit.shape == (80, 14) and ts.target.shape == (80, 1)
    assert ts.attributes.shape[0] == 5                           # the withheld basin gets attributes too


# ------------------------------------------------------------------------------------------------
# the analytic emulator
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bowl(synthetic):
    rows = np.column_stack([synthetic.attributes[n].values for n in ("p_mean", "aridity", "frac_snow", "elev_mean")])
    return QuadraticBowl(rows, [f"p{i}" for i in range(6)], basins=synthetic.basins, seed=3)


def test_bowl_peaks_at_its_known_optimum(bowl):
    rng = np.random.default_rng(0)
    for b in range(len(bowl.basins)):
        c = bowl.optimum(b)
        assert ((c > 0.2) & (c < 0.8)).all()
        top = bowl.predict(np.array([b]), c[None, :])
        np.testing.assert_allclose(top, [[bowl.peak]])
        u = rng.random((200, 6))
        assert (bowl.predict(np.full(200, b), u) < bowl.peak).all()
    assert len({tuple(np.round(bowl.optimum(b), 6)) for b in range(5)}) == 5   # optima differ by basin


def test_bowl_predict_features_regionalizes_and_checks_rows(bowl):
    u = np.random.default_rng(1).random((5, 6))
    np.testing.assert_allclose(bowl.predict(np.arange(5), u), bowl.predict_features(bowl._attributes, u))
    with pytest.raises(ValueError):
        bowl.predict(np.arange(5), u[:, :3])
    with pytest.raises(IndexError):
        bowl.predict(np.array([7]), u[:1])


def test_bowl_saves_loads_and_travels_as_bytes(bowl, tmp_path):
    u = np.random.default_rng(2).random((10, 6))
    b = np.arange(10) % 5
    for other in (QuadraticBowl.load(bowl.save(tmp_path / "em")), load_bytes(bowl.to_bytes())):
        np.testing.assert_array_equal(other.predict(b, u), bowl.predict(b, u))
        assert other.basins == bowl.basins and other.param_names == bowl.param_names


def test_bowl_variance_terms_match_monte_carlo():
    rng = np.random.default_rng(3)
    c, w = np.array([0.1, 0.5, 0.9]), np.array([1.0, 2.0, 0.5])
    u = rng.random((400_000, 3))
    mc = (w * (u - c) ** 2).var(axis=0)
    np.testing.assert_allclose(bowl_variance_terms(c, w), mc, rtol=0.01)
    s1, st = QuadraticBowl(np.zeros((1, 1)), ["a", "b", "c"], weights=w).sobol_indices(0)
    assert s1.sum() == pytest.approx(1.0) and np.array_equal(s1, st)
