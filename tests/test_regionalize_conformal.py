"""Split-conformal score intervals (lsegeo.regionalize.conformal) on synthetic heteroscedastic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lsegeo.regionalize.conformal import ScoreIntervals, coverage, min_calibration_size


def _data(n, seed):
    """Predicted scores, a difficulty d in [0.02, 0.3], actual = predicted + N(0, d): the error grows with d."""
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0.2, 0.9, n)
    d = rng.uniform(0.02, 0.3, n)
    actual = pred + rng.normal(0.0, d)
    groups = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    return pred, actual, d, groups


def test_coverage_on_fresh_data_is_near_the_confidence():
    pred, act, d, g = _data(2000, 0)
    new_pred, new_act, new_d, new_g = _data(20000, 1)
    for normalized in (False, True):
        si = ScoreIntervals(0.9, normalized=normalized).fit(pred, act, difficulty=d)
        assert si.is_normalized is normalized and si.n_calibration == 2000
        lo, hi = si.interval(new_pred, difficulty=new_d)
        assert np.all(lo <= new_pred) and np.all(new_pred <= hi)
        cov = coverage(lo, hi, new_act)
        assert abs(cov["overall"]["share_inside"] - 0.9) < 0.03, cov
        assert cov["overall"]["n"] == 20000 and cov["n_missing"] == 0
    # Mondrian: coverage holds within every group
    si = ScoreIntervals(0.9).fit(pred, act, difficulty=d, groups=g)
    lo, hi = si.interval(new_pred, difficulty=new_d, groups=new_g)
    cov = coverage(lo, hi, new_act, groups=new_g)
    assert set(cov["groups"]) == {"a", "b", "c"}
    for label, c in cov["groups"].items():
        assert abs(c["share_inside"] - 0.9) < 0.04, (label, c)
        assert c["n"] == int((new_g == label).sum())


def test_normalized_intervals_are_narrow_where_difficulty_is_low():
    pred, act, d, _ = _data(2000, 2)
    norm = ScoreIntervals(0.9).fit(pred, act, difficulty=d)
    plain = ScoreIntervals(0.9, normalized=False).fit(pred, act, difficulty=d)
    assert not plain.is_normalized
    p = np.full(2, 0.5)
    easy_hard = np.array([0.03, 0.28])
    lo, hi = norm.interval(p, difficulty=easy_hard)
    width = hi - lo
    assert width[0] < 0.3 * width[1]
    plo, phi = plain.interval(p)
    assert np.allclose(phi - plo, phi[0] - plo[0])  # standard intervals: one width
    assert width[0] < (phi - plo)[0] < width[1]
    # and the normalized ones are narrower on average for the same coverage (the errors are heteroscedastic)
    new_pred, new_act, new_d, _ = _data(5000, 3)
    cn = coverage(*norm.interval(new_pred, difficulty=new_d), new_act)["overall"]
    cp = coverage(*plain.interval(new_pred), new_act)["overall"]
    assert cn["mean_width"] < cp["mean_width"]
    # a normalized fit needs a difficulty to make intervals
    with pytest.raises(ValueError, match="pass difficulty"):
        norm.interval(p)


def test_nan_actuals_are_dropped_and_counted():
    pred, act, d, _ = _data(200, 4)
    act[:17] = np.nan
    si = ScoreIntervals(0.9).fit(pred, act, difficulty=d)
    assert si.n_dropped == 17 and si.n_calibration == 183
    lo, hi = si.interval(np.array([0.5, np.nan]), difficulty=np.array([0.1, 0.1]))
    assert np.isfinite(lo[0]) and np.isnan(lo[1]) and np.isnan(hi[1])
    cov = coverage(np.array([0.0, 0.0, np.nan]), np.array([1.0, 1.0, 1.0]), np.array([0.5, np.nan, 0.5]))
    assert cov["n_missing"] == 2 and cov["overall"] == {"share_inside": 1.0, "n": 1, "mean_width": 1.0}


def test_too_few_calibration_points_names_the_numbers():
    assert min_calibration_size(0.9) == 10 and min_calibration_size(0.95) == 19 and min_calibration_size(0.5) == 1
    pred, act, _, _ = _data(12, 5)
    act[:3] = np.nan  # 9 left: one short for 90%
    with pytest.raises(ValueError, match=r"9 calibration pairs \(3 of 12 dropped.*confidence 0.9.*at least 10"):
        ScoreIntervals(0.9).fit(pred, act)
    act[2] = pred[2]  # 10 left: enough
    si = ScoreIntervals(0.9).fit(pred, act)
    lo, hi = si.interval(pred)
    assert np.all(np.isfinite(lo) & np.isfinite(hi))
    # the threshold is the largest absolute residual (k = floor(0.1 * 11) = 1)
    ok = np.isfinite(act)
    assert si.threshold() == pytest.approx(np.abs(act[ok] - pred[ok]).max())


def test_small_or_unseen_groups_use_the_pooled_threshold_and_bounds_clip():
    pred, act, d, g = _data(600, 6)
    g[:5] = "tiny"
    si = ScoreIntervals(0.9, y_max=1.0).fit(pred, act, difficulty=d, groups=g)
    assert si.pooled_groups == ["tiny"]
    assert si.threshold("tiny") == si.threshold() == si.threshold("never-seen")
    assert si.threshold("a") != si.threshold()
    lo, hi = si.interval(np.array([0.5, 0.5, 0.99]), difficulty=np.full(3, 0.1), groups=["tiny", "zzz", "a"])
    assert hi[0] - lo[0] == pytest.approx(hi[1] - lo[1])
    assert hi[2] == 1.0  # clipped at y_max


def test_to_dict_round_trips_through_json():
    pred, act, d, g = _data(500, 7)
    si = ScoreIntervals(0.9, y_max=1.0).fit(pred, act, difficulty=d, groups=g)
    record = json.loads(json.dumps(si.to_dict()))
    assert record["n_calibration"] == 500 and record["normalized"] is True and set(record["group_thresholds"]) == set(g)
    back = ScoreIntervals.from_dict(record)
    new_pred, _, new_d, new_g = _data(100, 8)
    for a, b in zip(si.interval(new_pred, difficulty=new_d, groups=new_g),
                    back.interval(new_pred, difficulty=new_d, groups=new_g), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="lacks"):
        ScoreIntervals.from_dict({"confidence": 0.9})
