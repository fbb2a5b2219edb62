"""Regionalization by selection (lsegeo.regionalize.selection) on the synthetic ensemble store."""

from __future__ import annotations

import numpy as np
import pytest

from lsegeo.ensembles.store import FAILED, open_ensemble
from lsegeo.regionalize.folds import make_folds
from lsegeo.regionalize.selection import (
    actual_scores,
    candidate_sets,
    held_out_selection,
    lse_select,
    rank_candidates,
    select_best,
)
from lsegeo.testing import QuadraticBowl

WITHHELD = "90000005"  # the synthetic basin without observations (attributes, no scores)


@pytest.fixture(scope="module")
def ts(synthetic_store, synthetic_ensemble_store):
    """Training set over all five synthetic basins (the withheld one has attributes, no rows)."""
    from lsegeo.emulators.features import training_set
    from lsegeo.io.stores import open_store

    basins = [str(b) for b in open_store(synthetic_store, "attributes")["basin"].values]
    return training_set(synthetic_ensemble_store, synthetic_store, basins=basins)


@pytest.fixture(scope="module")
def bowl(ts):
    return QuadraticBowl(ts.attributes, ts.param_names, basins=ts.basins, seed=4)


class FittedBowl:
    """A QuadraticBowl behind ``fit`` (the truth needs no fitting), for the cross-validation."""

    def __init__(self, bowl):
        self.bowl = bowl
        self.target_names, self.target_senses = bowl.target_names, bowl.target_senses
        self.fitted_rows = 0

    def fit(self, ts):
        self.fitted_rows = len(ts)
        return self

    def predict_features(self, attr_rows, u):
        return self.bowl.predict_features(attr_rows, u)


def _expected_best(bowl, basin_idx, unit):
    """The candidate nearest the bowl's optimum in its weighted norm: the analytic best."""
    c = bowl.optimum(basin_idx)
    return int(np.argmin(((unit - c) ** 2 * bowl.weights).sum(axis=1)))


def test_candidate_sets_are_the_members_that_ran(synthetic_ensemble_store):
    ens = open_ensemble(synthetic_ensemble_store).load()
    cands = candidate_sets(ens)
    assert len(cands) == ens.sizes["member"] == 20
    assert cands.member.tolist() == list(range(20))
    np.testing.assert_array_equal(cands.params, ens["params"].isel(basin=0).values)
    assert np.all((cands.unit >= 0) & (cands.unit <= 1))
    # a member failed everywhere is no candidate; one that ran somewhere still is
    ens["status"][:, 3] = FAILED
    ens["status"][1:, 7] = FAILED
    cut = candidate_sets(ens)
    assert 3 not in cut.member and 7 in cut.member and len(cut) == 19
    # the withheld basin has no finite score: nothing ran there as far as the objective goes
    with pytest.raises(ValueError, match="no member"):
        candidate_sets(ens, basins=[WITHHELD], objective="kgeprime")


def test_lse_select_picks_the_member_known_to_be_best(bowl, ts, synthetic_ensemble_store):
    cands = candidate_sets(synthetic_ensemble_store)
    sel = lse_select(bowl, synthetic_ensemble_store, ts.basins, ts.attributes)
    expect = [_expected_best(bowl, i, cands.unit) for i in range(len(ts.basins))]
    assert sel.member.tolist() == cands.member[expect].tolist()
    assert len(set(expect)) > 1  # the basins' optima differ, so do their choices
    for i, k in enumerate(expect):
        dist = ((cands.unit[k] - bowl.optimum(i)) ** 2 * bowl.weights).sum()
        assert sel.predicted[i] == pytest.approx(bowl.peak - dist, rel=1e-12)
    np.testing.assert_array_equal(sel.params, cands.params[expect])
    ds = sel.to_dataset()
    assert ds["member"].sel(basin=WITHHELD).item() == sel.member[-1]
    assert ds.attrs["method"] == "lse-select" and ds.attrs["sense"] == "max"


def test_select_best_honours_the_sense(ts):
    class Negated(FittedBowl):
        def __init__(self, bowl):
            super().__init__(bowl)
            self.target_senses = ["min"]

        def predict_features(self, attr_rows, u):
            return -self.bowl.predict_features(attr_rows, u)

    bowl = QuadraticBowl(ts.attributes, ts.param_names, basins=ts.basins, seed=4)
    unit = np.random.default_rng(0).random((50, len(ts.param_names)))
    best_max, pred = select_best(bowl, ts.attributes, unit, max_rows=60)  # batches of one basin
    best_min, pred_min = select_best(Negated(bowl), ts.attributes, unit)
    np.testing.assert_array_equal(best_max, best_min)
    np.testing.assert_allclose(pred_min, -pred)
    assert best_max.tolist() == [_expected_best(bowl, i, unit) for i in range(len(ts.basins))]
    with pytest.raises(KeyError, match="no target"):
        select_best(bowl, ts.attributes, unit, target="nse")
    # the k best of every row, block by block, are those of the whole matrix, for either sense
    for em, ranked in ((bowl, -pred), (Negated(bowl), pred_min)):
        order, top = rank_candidates(em, ts.attributes, unit, 4, max_rows=60)
        expect = np.argsort(ranked, axis=1, kind="stable")[:, :4]
        np.testing.assert_array_equal(order, expect)
        np.testing.assert_allclose(top, np.take_along_axis(-ranked if em is bowl else ranked, expect, axis=1))
        np.testing.assert_array_equal(order[:, 0], best_max)
    assert rank_candidates(bowl, ts.attributes, unit, 500)[0].shape == (len(ts.basins), 50)  # k capped


def test_actual_scores_of_the_selection(bowl, ts, synthetic_ensemble_store):
    ens = open_ensemble(synthetic_ensemble_store)
    sel = lse_select(bowl, ens, ts.basins, ts.attributes)
    got = actual_scores(ens, sel, objective="kgeprime")
    for i, b in enumerate(sel.basins):
        want = float(ens["scores"].sel(basin=b, member=sel.member[i], objective="kgeprime",
                                       period="calibration").values)
        if b == WITHHELD:
            assert np.isnan(got[i]) and np.isnan(want)
        else:
            assert got[i] == want and np.isfinite(want)
    # another set under the same member id is not that member's score
    sel.params = sel.params + 1e-3
    assert np.isnan(actual_scores(ens, sel, objective="kgeprime")).all()


def test_lse_select_with_a_fitted_lse_and_raw_attributes(ts, synthetic_store, synthetic_ensemble_store):
    pytest.importorskip("xgboost")
    from lsegeo.emulators.features import training_set
    from lsegeo.emulators.lse import LargeSampleEmulator
    from lsegeo.io.stores import open_store

    two = training_set(synthetic_ensemble_store, synthetic_store, objectives=("nkgeprime", "mae"))
    em = LargeSampleEmulator(seed=0, n_jobs=1, n_estimators=30, max_depth=3).fit(two)
    attrs = open_store(synthetic_store, "attributes")
    sel = lse_select(em, synthetic_ensemble_store, [WITHHELD, "90000002"], attrs, target="mae")
    assert sel.sense == "min" and sel.target == "mae"
    cands = candidate_sets(synthetic_ensemble_store, objective="mae")
    rows = em.encode(attrs.sel(basin=[WITHHELD, "90000002"]))
    for i in range(2):
        pred = em.predict_features(rows[i], cands.unit)[:, 1]
        assert sel.member[i] == cands.member[int(np.argmin(pred))]
        assert sel.predicted[i] == pytest.approx(pred.min())
    with pytest.raises(TypeError, match="encode"):
        lse_select(QuadraticBowl(ts.attributes, ts.param_names), synthetic_ensemble_store, [WITHHELD], attrs)
    with pytest.raises(ValueError, match="attribute rows"):
        lse_select(em, synthetic_ensemble_store, [WITHHELD], rows)


def test_held_out_selection_with_the_analytic_truth(bowl, ts):
    folds = make_folds("study", ts.basins, n_folds=2)
    out = held_out_selection(lambda: FittedBowl(bowl), ts, folds)
    # every basin with rows is held out once; the withheld one has no rows, so no score
    assert out.basins == sorted({ts.basins[b] for b in ts.basin_index})
    np.testing.assert_allclose(out.predicted, bowl.predict(ts.basin_index, ts.params_unit))
    unit = np.unique(ts.params_unit, axis=0)
    for i, b in enumerate(out.basins):
        bi = ts.basins.index(b)
        k = _expected_best(bowl, bi, unit)
        row = np.flatnonzero((ts.basin_index == bi) & np.all(ts.params_unit == unit[k], axis=1))
        assert len(row) == 1
        assert out.member[i] == ts.member[row[0]]
        np.testing.assert_array_equal(out.actual[i], ts.target[row[0]])
        assert out.selected_predicted[i] == pytest.approx(bowl.predict(np.array([bi]), unit[k:k + 1])[0, 0])


def test_held_out_selection_with_an_lse_on_unseen_basins(ts):
    pytest.importorskip("xgboost")
    from lsegeo.emulators.lse import LargeSampleEmulator
    from lsegeo.emulators.skill import skill_metrics

    folds = make_folds("pub", ts.basins, n_folds=2, seed=1)
    fitted = []

    def factory():
        em = LargeSampleEmulator(seed=0, n_jobs=1, n_estimators=20, max_depth=3)
        fitted.append(em)
        return em

    out = held_out_selection(factory, ts, folds)
    assert len(fitted) == 2
    assert np.isfinite(out.predicted).all()
    for em, (train, _) in zip(fitted, folds.row_folds(ts), strict=True):
        assert em.skill["training_rows"] == len(train)
    # the actual score of each choice is the basin's own score of that member
    for i, b in enumerate(out.basins):
        row = np.flatnonzero((ts.basin_index == ts.basins.index(b)) & (ts.member == out.member[i]))
        np.testing.assert_array_equal(out.actual[i], ts.target[row[0]])
    skill = skill_metrics(ts.basin_index, ts.target, out.predicted, list(ts.target_names))
    assert skill["nkgeprime"]["n_basins"] == 4
