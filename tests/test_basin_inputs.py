"""The runner's reads of forcing and observations: equal to xarray's, fresh after a rebuild, damage named."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest

from lsegeo.errors import StoreError
from lsegeo.io import basin_inputs
from lsegeo.io.basin_inputs import load_basin_inputs
from lsegeo.io.stores import open_store
from lsegeo.testing import synthetic_basins, write_basins_store

FORCING = ["prcp", "pet", "tmax", "tmin"]


def _reference(store, basins, window, observed=("qobs", "has_observations")):
    """What the reads must equal: xarray's lazy open, selected and loaded."""
    tsel = slice(window[0], window[-1])
    with dask.config.set(scheduler="synchronous"):
        return (open_store(store, "forcing")[FORCING].sel(basin=basins, time=tsel).load(),
                open_store(store, "observed")[list(observed)].sel(basin=basins, time=tsel).load())


@pytest.fixture()
def store(synthetic, tmp_path):
    basin_inputs.clear_cache()
    yield write_basins_store(synthetic, tmp_path / "basins.zarr", chunk_basins=2)
    basin_inputs.clear_cache()


def test_reads_equal_xarrays_in_any_basin_order_across_chunks(store):
    window = pd.date_range("2000-03-01", "2002-06-30", freq="D")
    all_basins = [str(b) for b in open_store(store, "forcing").basin.values]
    for basins in ([all_basins[3], all_basins[0], all_basins[4]], all_basins[::-1], all_basins[1:2]):
        ref_f, ref_o = _reference(store, basins, window)
        got_f, got_o = load_basin_inputs(store, basins, FORCING, window, observed=("qobs", "has_observations"))
        assert [str(b) for b in got_f.basin.values] == basins
        np.testing.assert_array_equal(got_f.time.values, ref_f.time.values)
        for ref, got, names in ((ref_f, got_f, FORCING), (ref_o, got_o, ["qobs", "has_observations"])):
            for v in names:
                assert got[v].dims == ref[v].dims and got[v].dtype == ref[v].dtype
                np.testing.assert_array_equal(got[v].values, ref[v].values)
    # the withheld basin's flow is all NaN, read as such (fill values are not invented numbers)
    _, obs = load_basin_inputs(store, [all_basins[4]], FORCING, window, observed=("qobs", "has_observations"))
    assert np.isnan(obs["qobs"].values).all() and not bool(obs["has_observations"].values[0])


def test_a_store_rebuilt_at_the_same_path_is_read_afresh(store, tmp_path):
    window = pd.date_range("2000-01-01", "2000-12-31", freq="D")
    basins = [str(b) for b in open_store(store, "forcing").basin.values[:2]]
    before, _ = load_basin_inputs(store, basins, FORCING, window)
    other = synthetic_basins(5, seed=7, withheld=[4])
    write_basins_store(other, store, overwrite=True, chunk_basins=2)
    after, _ = load_basin_inputs(store, basins, FORCING, window)
    ref, _ = _reference(store, basins, window)
    np.testing.assert_array_equal(after["prcp"].values, ref["prcp"].values)
    assert not np.array_equal(after["prcp"].values, before["prcp"].values)


def test_missing_basin_variable_or_days_are_named(store):
    window = pd.date_range("2000-01-01", "2000-12-31", freq="D")
    basins = [str(b) for b in open_store(store, "forcing").basin.values[:2]]
    with pytest.raises(StoreError, match=r"group 'forcing' has no basin \['nope'\]"):
        load_basin_inputs(store, [basins[0], "nope"], FORCING, window)
    with pytest.raises(StoreError, match=r"group 'forcing' has no variable 'snow'; it has"):
        load_basin_inputs(store, basins, ["prcp", "snow"], window)
    with pytest.raises(ValueError, match="the simulation window has no days"):
        load_basin_inputs(store, basins, FORCING, pd.DatetimeIndex([]))
    with pytest.raises(StoreError, match=r"does not cover the simulation window 1999-12-01 to 2000-12-31 \(group "
                                         r"'forcing' holds 2000-01-01 to 2002-12-31"):
        load_basin_inputs(store, basins, FORCING, pd.date_range("1999-12-01", "2000-12-31", freq="D"))
    with pytest.raises(StoreError, match="does not cover the simulation window 2002-06-01 to 2003-01-05"):
        load_basin_inputs(store, basins, FORCING, pd.date_range("2002-06-01", "2003-01-05", freq="D"))


def test_truncated_forcing_chunk_names_store_group_and_variable(store):
    window = pd.date_range("2000-01-01", "2000-12-31", freq="D")
    basins = [str(b) for b in open_store(store, "forcing").basin.values]
    chunk = store / "forcing" / "pet" / "c" / "1" / "0"  # basins 2-3
    chunk.write_bytes(chunk.read_bytes()[:20])
    load_basin_inputs(store, basins[:2], FORCING, window)  # other chunks still read
    with pytest.raises(StoreError, match=r"group 'forcing', variable 'pet': cannot read the chunk\(s\) at \[2:4, "):
        load_basin_inputs(store, basins[2:4], FORCING, window)


def test_cache_stays_within_its_bound(store, monkeypatch):
    monkeypatch.setattr(basin_inputs, "CACHE_BYTES", 1)  # holds one block at most
    window = pd.date_range("2000-01-01", "2002-12-31", freq="D")
    basins = [str(b) for b in open_store(store, "forcing").basin.values]
    ref, _ = _reference(store, basins, window)
    for _ in range(2):
        got, _ = load_basin_inputs(store, basins, FORCING, window)
        np.testing.assert_array_equal(got["tmax"].values, ref["tmax"].values)
        assert len(basin_inputs._BLOCKS) == 1
