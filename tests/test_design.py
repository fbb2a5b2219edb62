"""Parameter spaces, Latin hypercube designs and evaluation periods."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from lsegeo.design import Parameter, ParameterSpace, latin_hypercube
from lsegeo.periods import DEFAULT_PERIODS, Period, period_slices, simulation_window

SPACE = ParameterSpace((Parameter("a", 0.0, 10.0, 2.0), Parameter("k", 1e-3, 1.0, 0.05, scale="log"),
                        Parameter("c", -2.0, 2.0, 0.0)), name="test")


def test_design_seeded_and_default_first():
    x = latin_hypercube(SPACE, 101, seed=7)
    assert x.shape == (101, 3)
    np.testing.assert_array_equal(x[0], SPACE.default)
    np.testing.assert_array_equal(x, latin_hypercube(SPACE, 101, seed=7))
    assert not np.array_equal(x, latin_hypercube(SPACE, 101, seed=8))
    assert (x >= SPACE.lower).all() and (x <= SPACE.upper).all()


def test_latin_hypercube_strata_and_log_scale():
    x = latin_hypercube(SPACE, 51, seed=3, include_default=False)
    u = SPACE.to_unit(x)
    for j in range(3):  # one member in each of the n equal strata of every dimension
        assert sorted(np.floor(u[:, j] * 51).astype(int)) == list(range(51))
    # log scale: uniform in log space, so about half the members below the geometric midpoint
    assert 20 <= (x[:, 1] < np.sqrt(1e-3 * 1.0)).sum() <= 31


def test_fixed_parameters_stay_at_default():
    x = latin_hypercube(SPACE, 20, seed=1, fixed=["c"])
    assert (x[:, 2] == 0.0).all() and len(np.unique(x[:, 0])) == 20


def test_unit_round_trip():
    x = latin_hypercube(SPACE, 30, seed=2)
    np.testing.assert_allclose(SPACE.from_unit(SPACE.to_unit(x)), x)


@pytest.mark.parametrize("kwargs, words", [
    (dict(name="p", lower=1, upper=0, default=0.5), "must be below"),
    (dict(name="p", lower=0, upper=1, default=2), "outside"),
    (dict(name="p", lower=0, upper=1, default=0.5, scale="log"), "lower > 0"),
])
def test_bad_parameters(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Parameter(**kwargs)


def test_space_lookup_and_subset():
    assert SPACE["k"].scale == "log"
    with pytest.raises(KeyError, match="a, k, c"):
        SPACE["zz"]
    assert SPACE.subset(["c", "a"]).names == ["a", "c"]
    assert list(SPACE.to_dataset().param.values) == ["a", "k", "c"]


def test_default_periods_and_window():
    cal, test = DEFAULT_PERIODS
    assert (cal.start, cal.end) == (dt.date(1999, 10, 1), dt.date(2008, 9, 30))  # Kratzert et al. (2019)
    assert (test.start, test.end) == (dt.date(1989, 10, 1), dt.date(1999, 9, 30))
    window = simulation_window(DEFAULT_PERIODS, 365)
    assert window[0].date() == dt.date(1988, 10, 1) and window[-1].date() == dt.date(2008, 9, 30)
    sl = period_slices(window, DEFAULT_PERIODS)
    assert window[sl["calibration"]][0].date() == cal.start and len(window[sl["calibration"]]) == 3288
    assert sl["test"].stop == sl["calibration"].start  # the periods share no day
    assert sl["test"].start == 365  # the warm-up year is never scored
    with pytest.raises(ValueError, match="outside"):
        period_slices(window, [Period("late", dt.date(2010, 1, 1), dt.date(2011, 1, 1))])
