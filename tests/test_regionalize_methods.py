"""Regionalization methods (lsegeo.regionalize.methods) on seeded synthetic basins.

24 synthetic basins (the last 4 without observed streamflow) and a 30-member HBV ensemble over
them stand for a calibration store: the 20 basins with scores are the training basins (their best
member is their calibrated set), the 4 others are the targets. A small xgboost LSE is fitted on the
training basins' members; every method of :data:`METHODS` proposes sets for the targets.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.errors import ConfigError, InputFormatError, UnknownNameError
from lsegeo.regionalize.donors import EARTH_RADIUS_KM
from lsegeo.regionalize.methods import METHODS, Context, Targets, regionalize
from lsegeo.regionalize.search import TargetRows, load_target_rows
from lsegeo.regionalize.settings import (
    AmortisedSettings,
    DonorSettings,
    OptimiseSettings,
    RegionalizeSettings,
)
from lsegeo.regionalize.training import fit_emulators, load_training

N_BASINS, WITHHELD = 24, (20, 21, 22, 23)
K = 3  # sets per target of lse-select and lse-optimise
SMALL_LSE = EmulatorSettings(backend_options={"n_estimators": 30, "max_depth": 4})
SETTINGS = RegionalizeSettings(n_samples=K, emulator=SMALL_LSE, donors=DonorSettings(k=K),
                               optimise=OptimiseSettings(pop_size=16, n_gen=8, n_restarts=1),
                               amortised=AmortisedSettings(hidden=(16,), epochs=5, n_emulators=1))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(basins store, ensemble store) of 24 synthetic basins, 30 HBV members run in-process."""
    from lsegeo.testing import synthetic_basins, write_basins_store, write_ensemble_store

    root = tmp_path_factory.mktemp("regionalize_methods")
    basins = write_basins_store(synthetic_basins(N_BASINS, seed=3, withheld=list(WITHHELD)), root / "basins.zarr")
    ens = write_ensemble_store(root / "ensemble.zarr", basins, n_members=30, seed=2)
    return basins, ens


@pytest.fixture(scope="module")
def training(stores):
    return load_training(stores[1], stores[0])


@pytest.fixture(scope="module")
def ctx(training):
    return Context(training, SETTINGS, fit_emulators(training.ts, SETTINGS))


@pytest.fixture(scope="module")
def targets(stores):
    """The 4 basins without observations (no calibrated set): the unseen targets."""
    from lsegeo.regionalize.domains import basins_domain

    return basins_domain(stores[0], "unobserved")


def _in_bounds(params, space):
    return bool(np.all(params >= space.lower - 1e-12) and np.all(params <= space.upper + 1e-12))


def _great_circle_km(lat0, lon0, lat, lon):
    """Haversine distance, km."""
    p0, p, dl = np.radians(lat0), np.radians(lat), np.radians(lon - lon0)
    h = np.sin((p - p0) / 2) ** 2 + np.cos(p0) * np.cos(p) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h))


def _targets_like(training, rows, lat, lon, ids=None):
    """Targets with the raw attributes of training basins ``rows`` at other locations."""
    attrs = training.attributes.iloc[list(rows)].copy()
    ids = ids or [f"t{i}" for i in range(len(attrs))]
    attrs.index = pd.Index(ids, name="target")
    return Targets(ids, attrs, np.asarray(lat, dtype=float), np.asarray(lon, dtype=float))


def test_training_basins_are_those_with_scores(training):
    assert len(training) == N_BASINS - len(WITHHELD)
    assert training.basins == [f"{90000001 + i:08d}" for i in range(20)]
    assert training.calibrated.shape == (20, len(training.space))
    assert np.isfinite(training.calibrated_scores["nkgeprime/calibration"]).all()
    assert set(training.ts.basins[i] for i in np.unique(training.ts.basin_index)) == set(training.basins)


@pytest.mark.parametrize("method", [m for m in METHODS.names() if m != "lse-amortised"])
def test_every_method_gives_sets_inside_the_bounds(ctx, targets, method):
    r = regionalize(ctx, targets, method)
    space = ctx.training.space
    ens_k = SETTINGS.donors.near + SETTINGS.donors.similar
    expected_k = {"default": 1, "donor-nearest": K, "donor-similar": K, "donor-ensemble": ens_k, "lse-select": K,
                  "lse-optimise": K}[method]
    assert r.params.shape == (len(targets), expected_k, len(space))
    assert r.unit.shape == r.params.shape
    assert _in_bounds(r.params, space)
    assert np.allclose(space.from_unit(r.unit.reshape(-1, len(space))).reshape(r.params.shape), r.params)
    assert r.targets == targets.targets and r.param_names == space.names
    assert r.predicted.shape == (len(targets), expected_k) and np.isfinite(r.predicted).all()
    assert np.array_equal(r.point, r.params[:, 0])
    assert np.all(r.spread == 0.0)  # one emulator: no spread


def test_default_is_the_space_default(ctx, targets):
    r = regionalize(ctx, targets, "default")
    space = ctx.training.space
    np.testing.assert_allclose(r.point, np.broadcast_to(space.default, r.point.shape), rtol=1e-12, atol=1e-12)
    # its predicted score is the emulator's prediction of the default set at each target
    rows = ctx.encode(targets.attributes)
    pred = ctx.predict(rows, np.broadcast_to(space.to_unit(space.default), (len(targets), len(space))))[0]
    np.testing.assert_allclose(r.predicted[:, 0], pred)


def test_donor_nearest_takes_the_closest_calibrated_basins(ctx, training):
    j = 7
    lat, lon = training.lat[j] + 0.02, training.lon[j] - 0.03
    tg = _targets_like(training, [12], [lat], [lon])  # attributes of another basin: location alone decides
    r = regionalize(ctx, tg, "donor-nearest")
    order = np.argsort(_great_circle_km(lat, lon, training.lat, training.lon))
    assert r.donor[0] == training.basins[j] == training.basins[order[0]]
    np.testing.assert_allclose(r.params[0], training.calibrated[order[:K]], rtol=1e-10)
    assert r.info["median_distance_km"] == pytest.approx(_great_circle_km(lat, lon, training.lat[j], training.lon[j]),
                                                         rel=1e-6)


def _similar_by_hand(ctx, training, row, k):
    """The k training basins closest to attribute ``row`` (numeric attributes standardised over the basins)."""
    names = [("area" if n == "area_gages2" else n) for n in ctx.emulators[0].encoder.names if n != "dom_land_cover"]
    x = training.attributes[names].to_numpy(dtype=float)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    zt = (np.asarray(row[names], dtype=float) - x.mean(axis=0)) / x.std(axis=0)
    return np.argsort(np.linalg.norm(z - zt, axis=1))[:k]


def test_donor_similar_finds_an_attribute_identical_donor(ctx, training):
    j = 5
    far = _targets_like(training, [j], [0.0], [0.0], ids=["twin"])  # far from every basin
    donors = _similar_by_hand(ctx, training, training.attributes.iloc[j], K)
    assert donors[0] == j
    nearest = replace(ctx, settings=replace(SETTINGS, donors=DonorSettings(k=K, combine="nearest")), cache={})
    r = regionalize(nearest, far, "donor-similar")
    assert r.donor[0] == training.basins[j]
    np.testing.assert_allclose(r.params[0], training.calibrated[donors], rtol=1e-10)

    # best_mean: the same k donor sets, ordered by their mean predicted score over the k donor basins
    b = regionalize(ctx, far, "donor-similar")
    assert b.info["combine"] == "best_mean"
    assert sorted(map(tuple, b.params[0])) == sorted(map(tuple, r.params[0]))
    donor_rows = ctx.encode(training.attributes)[donors]
    means = [ctx.predict(donor_rows, np.repeat(b.unit[0, s][None], K, axis=0))[0].mean() for s in range(K)]
    assert np.all(np.diff(means) <= 1e-12), means
    np.testing.assert_allclose(training.calibrated[training.basins.index(b.donor[0])], b.point[0], rtol=1e-10)


def test_donor_ensemble_takes_the_nearest_then_the_most_similar_others(ctx, training):
    j, twin = 7, 5
    lat, lon = training.lat[j] + 0.02, training.lon[j] - 0.03
    tg = _targets_like(training, [twin], [lat], [lon])   # near basin 7, with the attributes of basin 5
    ds = DonorSettings(near=2, similar=3)
    c = replace(ctx, settings=replace(SETTINGS, donors=ds), cache={})
    r = regionalize(c, tg, "donor-ensemble")
    near = np.argsort(_great_circle_km(lat, lon, training.lat, training.lon))[:2]
    ranked = _similar_by_hand(ctx, training, training.attributes.iloc[twin], len(training))
    similar = [d for d in ranked if d not in near][:3]
    assert r.response == "mean" and r.info["near"] == 2 and r.info["similar"] == 3
    assert r.donor[0] == training.basins[near[0]]
    assert list(r.donors[0]) == [training.basins[d] for d in [*near, *similar]]
    np.testing.assert_allclose(r.params[0], training.calibrated[[*near, *similar]], rtol=1e-10)
    assert twin in similar or twin in near  # the attribute twin is always among the donors
    # the predicted score of a mean response is the mean of its samples' predictions
    np.testing.assert_allclose(r.predicted_score, r.predicted.mean(axis=1))
    point = regionalize(ctx, tg, "donor-nearest")
    assert point.response == "point" and np.array_equal(point.predicted_score, point.predicted[:, 0])


def test_donor_ensemble_with_fewer_training_basins_than_donors(ctx, training, targets):
    few = replace(ctx, training=training.restrict(training.basins[:4]), cache={})
    r = regionalize(few, targets, "donor-ensemble")   # 3 near + 3 similar asked, 4 basins there
    assert r.params.shape[1] == 4 and r.info == {**r.info, "near": 3, "similar": 1}
    for i in range(len(targets)):
        assert len({tuple(s) for s in r.params[i]}) == 4   # four distinct donors, none twice


def test_donor_similar_mean_response(ctx, targets):
    c = replace(ctx, settings=replace(SETTINGS, donors=DonorSettings(k=K, combine="mean_response")), cache={})
    r = regionalize(c, targets, "donor-similar")
    assert r.response == "mean" and r.params.shape[1] == K and r.info["combine"] == "mean_response"
    near = regionalize(replace(c, settings=replace(SETTINGS, donors=DonorSettings(k=K, combine="nearest"))),
                       targets, "donor-similar")
    np.testing.assert_allclose(r.params, near.params)   # the same donors, most similar first


def test_donor_settings_refuse_an_empty_ensemble():
    with pytest.raises(ConfigError, match=r"near \+ similar must be at least 1"):
        DonorSettings(near=0, similar=0)
    with pytest.raises(ConfigError, match="must not be negative, got -1 and 3"):
        DonorSettings(near=-1)


def test_lse_select_chooses_simulated_sets_and_records_members(ctx, targets, stores):
    from lsegeo.ensembles.store import open_ensemble

    r = regionalize(ctx, targets, "lse-select")
    ens = open_ensemble(stores[1])
    ran = ens["params"].sel(basin=ctx.training.basins).values.reshape(-1, len(ctx.training.space))
    for s in r.params.reshape(-1, r.params.shape[-1]):
        assert np.min(np.abs(ran - s).max(axis=1)) < 1e-9  # every proposed set was simulated
    assert r.member.shape == (len(targets),)
    for i, m in enumerate(r.member):
        assert 0 <= m < ens.sizes["member"]
        np.testing.assert_allclose(ens["params"].isel(member=int(m)).values[0], r.point[i], rtol=1e-12)
    # best first, and the point estimate is the best of the whole pool by the emulator
    assert np.all(np.diff(r.predicted, axis=1) <= 1e-12)
    pool = np.unique(ctx.training.space.to_unit(ran), axis=0)
    rows = ctx.encode(targets.attributes)
    for i in range(len(targets)):
        best = ctx.predict(np.repeat(rows[i:i + 1], len(pool), axis=0), pool)[0].max()
        assert r.predicted[i, 0] == pytest.approx(best, abs=1e-9)
    assert r.info["candidates"] == len(pool)


def test_lse_select_names_the_basin_whose_calibrated_set_it_chose(ctx, targets):
    """A calibrated set that is no design member enters the pool as (member -1, its basin)."""
    from lsegeo.regionalize.methods import _candidate_pool

    space = ctx.training.space
    # basin 0's calibrated set moved to the centre of the box, where no design member lies (the
    # emulator's trees tie it with design members, which come first: which one is chosen is not
    # tested here, only that whatever is chosen is named consistently)
    best = np.full(len(space), 0.5)
    calibrated = ctx.training.calibrated.copy()
    calibrated[0] = space.from_unit(best[None, :])[0]
    moved = replace(ctx, training=replace(ctx.training, calibrated=calibrated), cache={})
    unit, member, params, basin = _candidate_pool(moved)
    (own,) = np.flatnonzero(basin == ctx.training.basins[0])
    assert member[own] == -1 and np.allclose(params[own], calibrated[0]) and np.allclose(unit[own], best)
    assert set(basin[member >= 0]) == {""} and set(member[basin != ""]) == {-1}
    r = regionalize(moved, targets, "lse-select")
    for i in range(len(targets)):  # sample 0 is either a design member or a named basin's calibrated set
        if r.member[i] >= 0:
            assert r.donor[i] == ""
        else:
            b = ctx.training.basins.index(r.donor[i])
            np.testing.assert_allclose(r.point[i], calibrated[b], rtol=1e-12)
    assert r.donors.shape == r.params.shape[:2] and np.array_equal(r.donors[:, 0], r.donor)


def test_lse_optimise_over_the_whole_cube_beats_the_default_on_the_emulator(ctx, targets):
    whole = replace(ctx, settings=replace(SETTINGS, optimise=replace(SETTINGS.optimise, trust_donors=0)), cache={})
    opt = regionalize(whole, targets, "lse-optimise")
    default = regionalize(ctx, targets, "default")
    assert np.all(opt.predicted[:, 0] > default.predicted[:, 0])
    assert np.all(np.diff(opt.predicted, axis=1) <= 1e-12)  # best first
    assert opt.info["distinct_targets"] == len(targets)
    # the K sets of a target are distinct
    for i in range(len(targets)):
        d = np.linalg.norm(opt.unit[i, :, None] - opt.unit[i, None], axis=-1)[np.triu_indices(K, 1)]
        assert np.all(d > 0)


def test_lse_optimise_searches_the_envelope_of_the_donors_sets(ctx, targets, training):
    o = SETTINGS.optimise
    r = regionalize(ctx, targets, "lse-optimise")
    cal = training.space.to_unit(training.calibrated)
    for i in range(len(targets)):
        near = np.argsort(_great_circle_km(targets.lat[i], targets.lon[i], training.lat, training.lon))[:o.trust_donors]
        like = _similar_by_hand(ctx, training, targets.attributes.iloc[i], o.trust_donors)
        sets = cal[np.concatenate([near, like])]
        lower = np.clip(sets.min(axis=0) - o.trust_margin, 0, 1)
        upper = np.clip(sets.max(axis=0) + o.trust_margin, 0, 1)
        assert np.all(r.unit[i] >= lower - 1e-12) and np.all(r.unit[i] <= upper + 1e-12), i
    assert r.info["trust_donors"] == o.trust_donors


def test_lse_optimise_with_few_representative_rows(ctx, targets):
    small = replace(ctx, settings=replace(SETTINGS, optimise=replace(SETTINGS.optimise, max_rows=2)), cache={})
    r = regionalize(small, targets, "lse-optimise")
    assert r.info["representative_rows"] == 2 and r.info["neighbours"] == 2
    assert r.params.shape == (len(targets), K, len(ctx.training.space))
    assert _in_bounds(r.params, ctx.training.space)
    # every target chooses among the optima of the 2 representatives only
    assert len(np.unique(r.unit.reshape(-1, r.unit.shape[-1]), axis=0)) <= 2 * K
    assert np.all(np.diff(r.predicted, axis=1) <= 1e-12)  # ranked at the target's own attributes


def test_identical_attribute_rows_are_optimised_once(ctx, training):
    tg = _targets_like(training, [3, 3, 3, 9], [40.0] * 4, [-100.0] * 4)
    r = regionalize(ctx, tg, "lse-optimise")
    assert r.info["distinct_targets"] == 2
    assert np.array_equal(r.unit[0], r.unit[1]) and np.array_equal(r.unit[0], r.unit[2])


def test_lse_amortised_runs_through_a_small_torch_ensemble(training, targets):
    pytest.importorskip("torch")
    settings = replace(SETTINGS, emulator=EmulatorSettings(backend="torch_mlp",
                                                           backend_options={"hidden": [16], "max_epochs": 10}))
    tctx = Context(training, settings, fit_emulators(training.ts, settings))
    r = regionalize(tctx, targets, "lse-amortised")
    assert r.params.shape == (len(targets), 1, len(training.space))
    assert _in_bounds(r.params, training.space)
    assert np.isfinite(r.predicted).all()
    assert r.info["epochs"] == 5 and r.info["hidden"] == [16]
    again = regionalize(tctx, targets, "lse-amortised")  # the trained network is kept in the context
    np.testing.assert_array_equal(again.params, r.params)


def test_encode_names_every_missing_attribute(ctx, targets):
    attrs = targets.attributes.drop(columns=["p_mean", "aridity"])
    with pytest.raises(InputFormatError, match="p_mean.*aridity"):
        ctx.encode(attrs)
    with pytest.raises(InputFormatError, match="p_mean"):
        regionalize(ctx, Targets(targets.targets, attrs, targets.lat, targets.lon), "lse-optimise")


def test_methods_that_need_an_emulator_say_so(training, targets):
    bare = Context(training, SETTINGS)
    assert regionalize(bare, targets, "donor-nearest").params.shape[0] == len(targets)
    assert np.isnan(regionalize(bare, targets, "default").predicted).all()
    with pytest.raises(InputFormatError, match="needs a fitted emulator"):
        regionalize(bare, targets, "lse-optimise")


def test_no_targets_and_unknown_method_are_refused(ctx, targets):
    empty = Targets([], targets.attributes.iloc[:0], np.array([]), np.array([]))
    with pytest.raises(InputFormatError, match="no targets"):
        regionalize(ctx, empty, "default")
    with pytest.raises(UnknownNameError, match="lse-magic"):
        regionalize(ctx, targets, "lse-magic")


def test_restrict_keeps_the_order_and_refuses_unknown_basins(training):
    sub = training.restrict([training.basins[4], training.basins[1]])
    assert sub.basins == [training.basins[4], training.basins[1]]
    np.testing.assert_array_equal(sub.calibrated, training.calibrated[[4, 1]])
    assert list(sub.attributes.index) == sub.basins and sub.lat[0] == training.lat[4]
    assert {sub.ts.basins[i] for i in np.unique(sub.ts.basin_index)} == set(sub.basins)
    assert len(sub.ts.target) == 2 * 30
    with pytest.raises(InputFormatError, match="99999999"):
        training.restrict([training.basins[0], "99999999"])


def test_fit_emulators_wants_a_large_sample_emulator(training):
    with pytest.raises(ConfigError, match="kind must be 'lse'"):
        fit_emulators(training.ts, replace(SETTINGS, emulator=EmulatorSettings(kind="sse")))


def test_target_rows_round_trip_through_bytes(ctx, targets):
    rows = ctx.encode(targets.attributes)
    view = TargetRows(ctx.emulators, rows)
    back = load_target_rows(view.to_bytes())
    u = np.random.default_rng(0).random((11, len(ctx.training.space)))
    idx = np.array([0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2])
    np.testing.assert_array_equal(back.rows, view.rows)
    np.testing.assert_array_equal(back.predict(idx, u), view.predict(idx, u))
    np.testing.assert_allclose(view.predict(idx, u)[:, 0], ctx.predict(rows[idx], u)[0])


def test_lse_optimise_on_a_dask_cluster_equals_in_process(ctx, targets, client):
    local = regionalize(ctx, targets, "lse-optimise")
    on_dask = regionalize(replace(ctx, client=client, cache={}), targets, "lse-optimise")
    np.testing.assert_allclose(on_dask.unit, local.unit, rtol=0, atol=1e-12)
    np.testing.assert_allclose(on_dask.predicted, local.predicted, rtol=0, atol=1e-12)


def test_a_donor_set_outside_the_bounds_is_refused_and_a_rounding_is_not(stores, tmp_path):
    """A calibrated set outside the store's bounds (a damaged or edited store) is named, not clipped."""
    import shutil

    from lsegeo.ensembles.store import GROUP
    from lsegeo.errors import InputFormatError
    from lsegeo.io.groups import StoreGroup
    from lsegeo.regionalize.training import check_donor_sets

    bad = tmp_path / "ensemble.zarr"
    shutil.copytree(stores[1], bad)
    g = StoreGroup(bad, GROUP, writable=True)
    params = g.read("params")
    space = load_training(stores[1], stores[0], with_rows=False).space
    j = space.names.index("FC")
    params[0, :, j] = space.upper[j] * 10  # every member of the first basin: its best one too
    g.write("params", slice(None), params)
    with pytest.raises(InputFormatError, match=r"basin \S+: FC = .* outside \["):
        load_training(bad, stores[0], with_rows=False)
    # a rounding of a bound passes (the product clips it); a NaN does not
    sets = np.broadcast_to(space.upper, (2, len(space))).copy()
    sets[0, j] *= 1 + 1e-12
    check_donor_sets(sets, space, ["a", "b"], "x")
    sets[1, j] = np.nan
    with pytest.raises(InputFormatError, match="basin b: FC = nan"):
        check_donor_sets(sets, space, ["a", "b"], "x")


def test_parameters_of_a_registered_model_get_their_descriptions(training):
    from lsegeo.models.hbv.adapter import HBV_SPACE

    assert training.space.name == "hbv"
    assert [p.description for p in training.space.parameters] == [p.description for p in HBV_SPACE.parameters]
    assert all(p.description for p in training.space.parameters)


def test_predictions_in_blocks_equal_one_call(ctx, targets):
    """Scores are predicted in blocks of rows (bounded memory): the blocks give what one call gives."""
    rows = ctx.rows(targets)
    u = np.random.default_rng(0).uniform(size=(len(targets) * 7, len(ctx.training.space)))
    attrs = np.repeat(rows, 7, axis=0)
    whole = ctx.predict(attrs, u)
    blocks = ctx.predict(attrs, u, block=5)
    np.testing.assert_array_equal(whole[0], blocks[0])
    # one attribute row shared by every set
    np.testing.assert_array_equal(ctx.predict(rows[0], u[:3])[0], ctx.predict(np.repeat(rows[:1], 3, 0), u[:3])[0])
