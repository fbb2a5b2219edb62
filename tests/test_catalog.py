"""intake 2 catalogs: entries written by lsegeo open the same datasets as the store itself."""

from __future__ import annotations

import dask.array as da
import pytest
import xarray as xr
import yaml

from lsegeo.errors import StoreError
from lsegeo.io.catalog import catalog_entries, open_catalog, register_store
from lsegeo.io.stores import open_store


def test_catalog_opens_same_datasets(mini_store, tmp_path):
    cat_path = tmp_path / "catalogs" / "lsegeo.yaml"
    entries = register_store(mini_store, cat_path, name="basins")
    assert entries == ["basins_attributes", "basins_forcing", "basins_observed"]
    cat = open_catalog(cat_path)
    for group in ("attributes", "forcing", "observed"):
        via_intake = cat[f"basins_{group}"].read()
        direct = open_store(mini_store, group)
        xr.testing.assert_identical(via_intake, direct)
    forcing = cat["basins_forcing"].read()
    assert isinstance(forcing["prcp"].data, da.Array)  # lazy
    assert forcing["prcp"].chunks == open_store(mini_store, "forcing")["prcp"].chunks


def test_catalog_is_relative_and_rewritable(mini_store, tmp_path):
    cat_path = mini_store.parent / "cat.yaml"
    register_store(mini_store, cat_path)
    raw = yaml.safe_load(cat_path.read_text())
    assert raw["version"] == 2
    assert raw["data"]["mini_basins_store"]["kwargs"]["url"] == "{CATALOG_DIR}/mini_basins.zarr"
    register_store(mini_store, cat_path)  # rewriting keeps one set of entries
    assert sorted(catalog_entries(cat_path)) == ["mini_basins_attributes", "mini_basins_forcing",
                                                 "mini_basins_observed"]
    meta = raw["entries"]["mini_basins_forcing"]["metadata"]
    assert len(meta["lsegeo_inputs_sha256"]) == 64


def test_catalog_errors(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_catalog(tmp_path / "none.yaml")
    with pytest.raises(StoreError, match="not a zarr v3 store"):
        register_store(tmp_path, tmp_path / "c.yaml")
    bad = tmp_path / "v1.yaml"
    bad.write_text("sources: {}\n")
    (tmp_path / "s.zarr").mkdir()
    with pytest.raises(StoreError, match="version: 2"):
        from lsegeo.io.catalog import _load

        _load(bad)


# --- a path is not an identity: entries are checked against the store they were written for ---

@pytest.fixture()
def registered(synthetic, tmp_path):
    from lsegeo.testing import write_basins_store

    store = write_basins_store(synthetic, tmp_path / "work" / "basins.zarr")
    cat_path = tmp_path / "work" / "catalog.yaml"
    register_store(store, cat_path)
    return store, cat_path


def test_catalog_records_the_store_id(registered):
    from lsegeo.io.catalog import stale_entries
    from lsegeo.io.stores import store_id

    store, cat_path = registered
    raw = yaml.safe_load(cat_path.read_text())
    assert raw["data"]["basins_store"]["metadata"]["lsegeo_store_id"] == store_id(store) != ""
    assert stale_entries(cat_path) == {}
    assert "STALE" not in " ".join(catalog_entries(cat_path).values())
    xr.testing.assert_identical(open_catalog(cat_path)["basins_forcing"].read(), open_store(store, "forcing"))


def test_replaced_store_makes_entries_stale(registered, synthetic):
    from click.testing import CliRunner

    from lsegeo.cli import main
    from lsegeo.io.stores import store_id
    from lsegeo.testing import write_basins_store

    store, cat_path = registered
    recorded = store_id(store)
    write_basins_store(synthetic, store, overwrite=True)  # same path, another store
    found = store_id(store)
    assert found != recorded
    listed = catalog_entries(cat_path)
    assert sorted(listed) == ["basins_attributes", "basins_forcing", "basins_observed"]
    for desc in listed.values():
        assert "[STALE:" in desc and recorded in desc and found in desc
    with pytest.raises(StoreError) as err:
        open_catalog(cat_path)["basins_forcing"]
    text = str(err.value)
    assert "'basins_forcing'" in text and str(store) in text and recorded in text and found in text
    with pytest.raises(StoreError, match="recorded id"):
        getattr(open_catalog(cat_path), "basins_observed")  # noqa: B009 - attribute access is checked too
    out = CliRunner().invoke(main, ["catalog", "list", "--catalog", str(cat_path)])
    assert out.exit_code == 0 and out.output.count("STALE") == 3 and recorded in out.output
    register_store(store, cat_path)  # registering again makes the entries current
    assert "STALE" not in " ".join(catalog_entries(cat_path).values())
    xr.testing.assert_identical(open_catalog(cat_path)["basins_forcing"].read(), open_store(store, "forcing"))


def test_missing_store_is_reported(registered):
    import shutil

    store, cat_path = registered
    shutil.rmtree(store)
    assert all("is missing" in d for d in catalog_entries(cat_path).values())
    with pytest.raises(StoreError, match="is missing") as err:
        open_catalog(cat_path)["basins_attributes"]
    assert "'basins_attributes'" in str(err.value) and str(store) in str(err.value)
