"""Target domains of regionalization: basins, tables, grids, CAMELS attributes on a grid, applicability."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from lsegeo.errors import ConfigError, InputFormatError, UnknownBasinError
from lsegeo.regionalize.applicability import Applicability
from lsegeo.regionalize.domains import (
    Domain,
    basins_domain,
    camels_grid_domain,
    grid_domain,
    table_domain,
)
from lsegeo.regionalize.rasterize import (
    NLDAS_CONUS,
    camels_grid_attributes,
    footprint_mask,
    idw_weights,
    rasterize_basins,
    read_basin_geometries,
    regular_grid,
    surfdata_grid,
)

# synthetic basins (lon0, lat0, lon1, lat1): A big, B nested in A, C apart; D is in no store
SQUARES = {"90000001": (-105.5, 40.5, -104.0, 41.5), "90000002": (-105.0, 40.8, -104.6, 41.2),
           "90000003": (-103.8, 41.6, -103.3, 41.9), "99999999": (-103.8, 40.2, -103.5, 40.4)}
# a 20 x 30 grid at 0.1 degree: centres 40.05 .. 41.95 N, -105.95 .. -103.05 E
GRID_BOUNDS, GRID_RES = (-106.0, 40.0, -103.0, 42.0), 0.1


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory):
    """The squares as a GeoPackage in Web Mercator (so reading it must reproject to EPSG:4326)."""
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp_path_factory.mktemp("gpkg") / "basins.gpkg"
    gdf = gpd.GeoDataFrame({"gauge_id": list(SQUARES)}, geometry=[box(*b) for b in SQUARES.values()],
                           crs="EPSG:4326").to_crs("EPSG:3857")
    gdf.to_file(path, driver="GPKG")
    return path


def haversine_km(lat1, lon1, lat2, lon2):
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def smallest_containing(lat, lon):
    """The id of the smallest square that contains a point (brute force), or ''."""
    inside = [(b[2] - b[0]) * (b[3] - b[1]) for b in SQUARES.values()
              if b[0] < lon < b[2] and b[1] < lat < b[3]]
    ids = [g for g, b in SQUARES.items() if b[0] < lon < b[2] and b[1] < lat < b[3]]
    return ids[int(np.argmin(inside))] if ids else ""


# -- grids ----------------------------------------------------------------------------------------

def test_nldas_conus_grid_has_224_by_464_cells_centred_on_the_eighth_degree():
    lat, lon = regular_grid(NLDAS_CONUS, 0.125)
    assert (lat.size, lon.size) == (224, 464)
    assert lat[0] == pytest.approx(25.0625) and lat[-1] == pytest.approx(52.9375)
    assert lon[0] == pytest.approx(-124.9375) and lon[-1] == pytest.approx(-67.0625)
    assert np.allclose(np.diff(lat), 0.125) and np.allclose(np.diff(lon), 0.125)


@pytest.mark.parametrize(("bounds", "res", "text"), [
    (NLDAS_CONUS, 0.0, "resolution 0.0"), (NLDAS_CONUS, -1, "resolution -1"),
    ((-125.0, 53.0, -67.0, 25.0), 0.125, "south 53.0"), ((-67.0, 25.0, -125.0, 53.0), 0.125, "west -67.0"),
    ((-125.0, -95.0, -67.0, 53.0), 0.125, "south -95.0"), ((0, 0, 1), 0.1, "4 numbers"),
    ((0.0, 0.0, 1.0, 1.0), 5.0, "larger than the extent"), ((0.0, 0.0, float("nan"), 1.0), 0.1, "finite")])
def test_regular_grid_rejects_bad_bounds_naming_the_value(bounds, res, text):
    with pytest.raises(ConfigError, match=text.replace("(", r"\(")):
        regular_grid(bounds, res)


def test_surfdata_grid_keeps_0_360_longitudes_and_the_land_mask(tmp_path):
    from lsegeo.testing.ctsm import write_surfdata

    path = write_surfdata(tmp_path / "surfdata.nc", nlat=3, nlon=4, lon0=255.0, lat0=40.0, res=0.125)
    lat, lon, land = surfdata_grid(path)
    assert np.allclose(lon, 255.0 + 0.125 * np.arange(4)) and np.allclose(lat, 40.0 + 0.125 * np.arange(3))
    assert land.shape == (3, 4) and not land[0, 0] and land.sum() == 11
    bad = write_surfdata(tmp_path / "nolon.nc", drop=("LONGXY",))
    with pytest.raises(InputFormatError, match="nolon.nc.*LONGXY"):
        surfdata_grid(bad)


# -- rasterization and weighting ------------------------------------------------------------------

def test_geometries_are_read_in_wgs84_with_string_ids(gpkg):
    basins = read_basin_geometries(gpkg)
    assert basins.crs.to_epsg() == 4326 and list(basins["gauge_id"]) == list(SQUARES)
    assert np.allclose(basins.geometry.iloc[1].bounds, SQUARES["90000002"], atol=1e-9)


def test_gpkg_without_id_column_is_named(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp_path / "noid.gpkg"
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(path)
    with pytest.raises(InputFormatError, match="noid.gpkg.*no basin id column"):
        read_basin_geometries(path)


@pytest.mark.parametrize("uneven", [False, True])
def test_cells_take_the_smallest_basin_that_contains_their_centre(gpkg, uneven):
    basins = read_basin_geometries(gpkg)
    lat, lon = regular_grid(GRID_BOUNDS, GRID_RES)
    if uneven:  # shapely fallback instead of rasterio
        lat = np.sort(np.concatenate([lat[:10], lat[10:] + 0.01 * np.arange(10) / 10]))
    burnt = rasterize_basins(basins.geometry.values, lat, lon)
    ids = np.array(list(SQUARES), dtype=object)
    for i, y in enumerate(lat):
        for j, x in enumerate(lon):
            assert (ids[burnt[i, j]] if burnt[i, j] >= 0 else "") == smallest_containing(y, x), (y, x)
    assert (burnt == 1).sum() == 16 and (burnt == 0).sum() == 150 - 16


def test_basins_are_shifted_onto_a_0_360_grid(gpkg):
    basins = read_basin_geometries(gpkg)
    lat, lon = regular_grid(GRID_BOUNDS, GRID_RES)
    assert np.array_equal(rasterize_basins(basins.geometry.values, lat, lon + 360.0),
                          rasterize_basins(basins.geometry.values, lat, lon))


def test_idw_weights_follow_great_circle_distances():
    src_lat, src_lon = np.array([40.0, 41.0, 45.0]), np.array([-105.0, -104.0, -100.0])
    index, dist, w = idw_weights(src_lat, src_lon, np.array([40.2, 41.0]), np.array([-104.9, -104.0]), k=2, power=2)
    assert list(index[0]) == [0, 1] and dist[0, 0] == pytest.approx(haversine_km(40.2, -104.9, 40.0, -105.0))
    inv = np.array([haversine_km(40.2, -104.9, la, lo) for la, lo in zip(src_lat[:2], src_lon[:2], strict=True)]) ** -2
    assert np.allclose(w[0], inv / inv.sum())
    assert np.allclose(w[1], [1.0, 0.0])  # on a source: that source alone


# -- CAMELS attributes on a grid (synthetic basins store) -----------------------------------------

def test_camels_grid_attributes_inside_basins_idw_elsewhere(gpkg, synthetic_store, caplog):
    caplog.set_level("INFO", logger="lsegeo.regionalize.rasterize")
    lat, lon = regular_grid(GRID_BOUNDS, GRID_RES)
    land = np.ones((lat.size, lon.size), bool)
    land[0, :] = False  # the southern row is sea
    store = xr.open_zarr(synthetic_store, group="attributes")
    ds = camels_grid_attributes(lat, lon, synthetic_store, gpkg, land_mask=land)
    src, gauge = ds["attribute_source"].values, ds["source_basin"].values
    assert (src == 1).sum() == 150 + 15 and (src == 0).sum() == 30 and (src == 2).sum() == 600 - 30 - 165
    assert "99999999" not in set(gauge.ravel()) and "1 of the 4 basins" in caplog.text  # not in the store
    # a cell in the nested basin takes the nested basin's own attributes
    i, j = int(np.argmin(abs(lat - 41.05))), int(np.argmin(abs(lon + 104.75)))
    assert gauge[i, j] == "90000002" and src[i, j] == 1
    assert ds["elev_mean"].values[i, j] == pytest.approx(float(store["elev_mean"].sel(basin="90000002")))
    assert ds["area_gages2"].values[i, j] == pytest.approx(float(store["area"].sel(basin="90000002")))
    # an IDW cell: Shepard weights of the three basin centroids
    i, j = 15, 25
    assert src[i, j] == 2 and gauge[i, j] == ""
    cent = {g: ((b[1] + b[3]) / 2, (b[0] + b[2]) / 2) for g, b in SQUARES.items() if g != "99999999"}
    w = {g: haversine_km(lat[i], lon[j], *c) ** -2 for g, c in cent.items()}
    expect = sum(w[g] * float(store["p_mean"].sel(basin=g)) for g in w) / sum(w.values())
    assert ds["p_mean"].values[i, j] == pytest.approx(expect, rel=1e-9)
    nearest = min(cent, key=lambda g: haversine_km(lat[i], lon[j], *cent[g]))
    assert ds["dom_land_cover"].values[i, j] == str(store["dom_land_cover"].sel(basin=nearest).values)
    assert np.isnan(ds["p_mean"].values[0]).all() and (ds["dom_land_cover"].values[0] == "").all()


def test_without_a_land_mask_land_is_the_basins_footprint(gpkg, synthetic_store):
    lat, lon = regular_grid(GRID_BOUNDS, GRID_RES)
    basins = read_basin_geometries(gpkg)
    foot = footprint_mask(basins.geometry.values[:3], lat, lon, buffer=0.5)
    assert not foot[0, 0] and foot[int(np.argmin(abs(lat - 41.05))), int(np.argmin(abs(lon + 104.75)))]
    domain = camels_grid_domain(lat, lon, synthetic_store, gpkg, name="box")
    assert domain.kind == "grid" and domain.grid_shape == (20, 30)
    assert len(domain) == foot.sum() < 600
    assert set(np.unique(domain.attribute_source)) == {1, 2}
    assert set(domain.inputs) == {"basins.gpkg", "basins.zarr"} and "footprint" in domain.description
    grid = domain.to_grid(domain.attributes["elev_mean"].to_numpy())
    assert np.isnan(grid[0, 0]) and np.isfinite(grid[foot]).all()


def test_a_grid_outside_the_basins_footprint_is_refused_naming_the_footprint(gpkg, synthetic_store):
    lat, lon = regular_grid((5.0, 45.0, 7.0, 47.0), 0.5)   # the Alps: far from every basin
    with pytest.raises(InputFormatError, match=r"no land cells.*4 x 4 cells.*footprint of the CAMELS basins.*"
                                               r"land_mask"):
        camels_grid_domain(lat, lon, synthetic_store, gpkg, name="alps")


def test_camels_grid_on_a_surfdata_grid(tmp_path, gpkg, synthetic_store):
    from lsegeo.testing.ctsm import write_surfdata

    path = write_surfdata(tmp_path / "surfdata.nc", nlat=3, nlon=4, lon0=254.55, lat0=40.55, res=0.1)
    lat, lon, land = surfdata_grid(path)
    domain = camels_grid_domain(lat, lon, synthetic_store, gpkg, land_mask=land)
    assert len(domain) == 11 and 0 not in domain.cell and (domain.lon > 180).all()
    assert (domain.attribute_source == 1).all()  # every land cell lies in basin A (shifted by 360 degrees)


def test_bad_land_mask_and_missing_attribute_are_named(gpkg, synthetic_store):
    lat, lon = regular_grid(GRID_BOUNDS, GRID_RES)
    with pytest.raises(InputFormatError, match=r"land_mask.*\(20, 30\)"):
        camels_grid_attributes(lat, lon, synthetic_store, gpkg, land_mask=np.ones((3, 3)))
    with pytest.raises(InputFormatError, match="no attribute.*soil_wetness"):
        camels_grid_attributes(lat, lon, synthetic_store, gpkg, names=["p_mean", "soil_wetness"])


# -- basins and tables ----------------------------------------------------------------------------

def test_basins_domain_selects_by_observations_and_by_id(synthetic_store, synthetic):
    from lsegeo.emulators.features import STUDY_ATTRIBUTES, encode_attributes

    un = basins_domain(synthetic_store)
    assert un.kind == "basins" and un.targets == ["90000005"] and un.name == "basins_unobserved"
    assert len(basins_domain(synthetic_store, "observed")) == 4 and len(basins_domain(synthetic_store, "all")) == 5
    assert un.attributes.loc["90000005", "elev_mean"] == pytest.approx(float(synthetic.attributes["elev_mean"][4]))
    assert un.attributes["area_gages2"].equals(un.attributes["area"])
    assert un.lat[0] == pytest.approx(float(synthetic.attributes["lat"][4]))
    assert list(un.inputs)[0] == "basins.zarr" and un.inputs["basins.zarr"]
    rows = un.attribute_rows(STUDY_ATTRIBUTES)
    assert list(rows.columns) == list(STUDY_ATTRIBUTES)
    assert encode_attributes(rows)[0].shape[0] == 1
    two = basins_domain(synthetic_store, ["90000003", "90000001"])
    assert two.targets == ["90000003", "90000001"]
    with pytest.raises(UnknownBasinError, match="12345678"):
        basins_domain(synthetic_store, ["90000001", "12345678"])
    with pytest.raises(ConfigError, match="'gauged'"):
        basins_domain(synthetic_store, "gauged")
    with pytest.raises(InputFormatError, match="basins_unobserved.*soil_wetness"):
        un.attribute_rows(["p_mean", "soil_wetness"])


def test_basins_domain_places_camels_basins_at_their_polygon_centroids(mini_store, data_dir):
    """As the training basins are placed, so that donor distances in a product are those of the cross-validation."""
    import pyogrio

    from lsegeo.io.stores import open_store
    from lsegeo.provenance import sha256_file

    gpkg = data_dir / "ctsm_camels" / "basins_627.gpkg"
    cen = pyogrio.read_dataframe(gpkg, columns=["gauge_id", "lat_cen", "lon_cen"], read_geometry=False)
    cen = cen.set_index(cen["gauge_id"].astype(str).str.zfill(8))
    dom = basins_domain(mini_store, "all", gpkg=gpkg)
    at = {b: (la, lo) for b, la, lo in zip(dom.targets, dom.lat, dom.lon, strict=True)}
    inside = [b for b in dom.targets if b in cen.index]
    outside = [b for b in dom.targets if b not in cen.index]
    assert len(inside) == 627 and len(outside) == 671 - 627
    for b in inside[:50]:
        assert at[b] == (cen.loc[b, "lat_cen"], cen.loc[b, "lon_cen"])
    gauges = open_store(mini_store, "attributes").load()
    for b in outside:  # no polygon: the gauge
        assert at[b] == (float(gauges["lat"].sel(basin=b)), float(gauges["lon"].sel(basin=b)))
    assert "polygon centroids of basins_627.gpkg (627 basins)" in dom.description
    assert dom.inputs["basins_627.gpkg"] == sha256_file(gpkg)  # the locations' source is an input


def test_table_domain_reads_ids_as_text(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text("gauge,lat,lon,aridity,dom_land_cover\n01013500,47.2,-68.6,0.6,Mixed Forests\n"
                    "02000000,35.0,-80.0,,\n")
    domain = table_domain(path)
    assert domain.targets == ["01013500", "02000000"] and domain.kind == "table" and domain.name == "targets"
    assert domain.attributes["aridity"].dtype == np.float64 and np.isnan(domain.attributes["aridity"].iloc[1])
    assert list(domain.attributes["dom_land_cover"]) == ["Mixed Forests", ""]
    assert domain.lon[1] == -80.0 and len(domain.inputs["targets.csv"]) == 64
    pq = tmp_path / "targets.parquet"
    pd.read_csv(path, dtype={"gauge": str}).to_parquet(pq)
    assert table_domain(pq, id_column="gauge").targets == domain.targets


@pytest.mark.parametrize(("text", "match"), [
    ("id,latitude,lon,a\nx,1,2,3\n", "targets.csv.*latitude column 'lat'"),
    ("id,lat,lon,a\nx,1,2,3\nx,2,3,4\n", "targets.csv.*duplicate ids x"),
    ("id,lat,lon,a\nx,95,2,3\n", "targets.csv.*column 'lat'.*x"),
    ("id,lat,lon,a\nx,45,,3\n", "targets.csv.*column 'lon'"),
    ("id,lat,lon,a\n", "targets.csv.*no rows")])
def test_bad_tables_are_named(tmp_path, text, match):
    path = tmp_path / "targets.csv"
    path.write_text(text)
    with pytest.raises(InputFormatError, match=match):
        table_domain(path)


# -- grid domains from a user's dataset -----------------------------------------------------------

def user_grid():
    lat, lon = np.array([10.0, 11.0, 12.0]), np.array([20.0, 21.0])
    a = np.array([[np.nan, 1.0], [2.0, np.nan], [4.0, 5.0]])
    ds = xr.Dataset({"a": (("lat", "lon"), a), "b": (("lat", "lon"), a * 10)}, coords={"lat": lat, "lon": lon})
    return lat, lon, ds


def test_grid_domain_land_cells_and_to_grid():
    lat, lon, ds = user_grid()
    domain = grid_domain(lat, lon, ds, name="user")
    assert list(domain.cell) == [1, 2, 4, 5] and domain.targets == ["cell1", "cell2", "cell4", "cell5"]
    assert np.allclose(domain.lat, [10, 11, 12, 12]) and np.allclose(domain.lon, [21, 20, 20, 21])
    back = domain.to_grid(domain.attributes["a"].to_numpy())
    assert np.array_equal(back, ds["a"].values, equal_nan=True)
    stacked = domain.to_grid(np.arange(8).reshape(4, 2), fill=-1)
    assert stacked.shape == (3, 2, 2) and stacked.dtype.kind == "i" and (stacked[0, 0] == -1).all()
    assert domain.to_grid(np.ones(4, np.int8), fill=0).dtype == np.int8
    assert domain.to_grid(np.ones(4, np.int8)).dtype == np.float64
    assert [(s.start, s.stop) for s in domain.chunks(3)] == [(0, 3), (3, 4)]
    # a land mask decides; attribute NaNs on land are kept for the encoder
    masked = grid_domain(lat, lon, ds.sortby("lat", ascending=False), land_mask=np.ones((3, 2)))
    assert len(masked) == 6 and masked.attributes["a"].isna().sum() == 2


def test_grid_domain_errors_name_the_problem():
    lat, lon, ds = user_grid()
    with pytest.raises(InputFormatError, match="no land cells"):
        grid_domain(lat, lon, ds * np.nan)
    with pytest.raises(InputFormatError, match="axis lat differs.*position 1"):
        grid_domain(np.array([10.0, 11.5, 12.0]), lon, ds)
    with pytest.raises(InputFormatError, match="axis lon has 2 values"):
        grid_domain(lat, np.array([20.0, 21.0, 22.0]), ds)
    with pytest.raises(ConfigError, match="no grid"):
        Domain("basins", "b", ["1"], pd.DataFrame({"a": [1.0]}, index=["1"]), [1.0], [2.0]).to_grid([1.0])


# -- applicability --------------------------------------------------------------------------------

def test_applicability_distance_threshold_and_flags():
    rng = np.random.default_rng(0)
    train = rng.normal([0, 10, 5], [1, 2, 0], size=(400, 3))  # the third column is constant
    app = Applicability.fit(train, k=5, quantile=0.95)
    assert app.scale[2] == 1.0
    assert 0.03 <= (app.train_distance > app.threshold).mean() <= 0.05  # 5 % of the leave-one-out distances
    assert app.flag(train).mean() <= 0.05  # a training row itself is among its own neighbours
    assert app.flag(np.array([[8.0, 10.0, 5.0]]))[0] == 1 and app.flag(np.array([[0.0, 10.0, 5.0]]))[0] == 0
    far = np.array([[3.0, 10.0, 5.0]])
    assert app.distance(far)[0] > app.threshold
    big = rng.normal([0, 10, 5], [1, 2, 0], size=(2000, 3))
    assert np.allclose(app.distance(big, chunk_size=128), app.distance(big))
    assert Applicability.fit(train, quantile=0.5).threshold < app.threshold
    assert np.isnan(app.distance([[np.nan, 1, 1]])[0]) and app.flag([[np.nan, 1, 1]])[0] == 1
    again = Applicability.from_dict(app.to_dict())
    assert np.allclose(again.distance(big[:50]), app.distance(big[:50]))


def test_applicability_leave_one_out_by_hand():
    app = Applicability.fit(np.array([[0.0], [1.0], [3.0]]), k=1, quantile=1.0)
    # standardized by mean 4/3 and std sqrt(14/9); leave-one-out nearest distances 1, 1, 2 (raw units)
    assert np.allclose(app.train_distance * app.scale[0], [1.0, 1.0, 2.0])
    assert app.threshold * app.scale[0] == pytest.approx(2.0)
    with pytest.raises(InputFormatError, match="at least 2"):
        Applicability.fit(np.array([[1.0, 2.0]]))
    with pytest.raises(ConfigError, match="quantile 1.5"):
        Applicability.fit(np.zeros((5, 2)), quantile=1.5)


# -- the real CAMELS basins on the CONUS grid -----------------------------------------------------

@pytest.fixture(scope="module")
def camels_attributes_store(data_dir, tmp_path_factory):
    """The real CAMELS attributes of all 671 gauges as a basins store with only its attributes group."""
    from lsegeo.ingest.camels import attributes_dataset
    from lsegeo.io.camels import CamelsLayout, read_attributes
    from lsegeo.io.stores import write_groups

    table = read_attributes(CamelsLayout(data_dir / "camels_us"))
    ds = attributes_dataset(table, list(table.index), list(table.index[::2]))
    return write_groups({"attributes": ds}, tmp_path_factory.mktemp("camels") / "camels_basins.zarr",
                        attrs={"id": "test-camels-attributes", "lsegeo_store_kind": "basins"}, inputs={})


def test_conus_grid_from_the_real_camels_basins(data_dir, camels_attributes_store):
    import shapely

    from lsegeo.regionalize.rasterize import CAMELS_GPKG

    lat, lon = regular_grid(NLDAS_CONUS, 0.125)
    grid = camels_grid_attributes(lat, lon, camels_attributes_store)
    domain = grid_domain(lat, lon, grid, name="nldas_0.125deg")
    assert domain.grid_shape == (224, 464) and 40_000 < len(domain) < 224 * 464
    n_in = int((domain.attribute_source == 1).sum())
    assert 2000 < n_in < 3300 and (domain.attribute_source == 2).sum() == len(domain) - n_in
    store = xr.open_zarr(camels_attributes_store, group="attributes").load()
    basins = read_basin_geometries(data_dir / CAMELS_GPKG)
    gauge = grid["source_basin"].values
    # a cell at a gauge's location, inside its basin and in no other one, takes that basin's attributes
    ids = basins["gauge_id"].to_numpy()
    glat, glon = (store[c].sel(basin=ids).values for c in ("lat", "lon"))
    i, j = np.abs(lat[None, :] - glat[:, None]).argmin(axis=1), np.abs(lon[None, :] - glon[:, None]).argmin(axis=1)
    pairs = shapely.STRtree(basins.geometry.values).query(shapely.points(lon[j], lat[i]), predicate="within")
    holders = pd.Series(pairs[1]).groupby(pairs[0]).agg(list)
    alone = [b for b, h in holders.items() if h == [b]]
    assert len(alone) >= 100
    for b in alone:
        gid = ids[b]
        assert gauge[i[b], j[b]] == gid
        for name in ("aridity", "elev_mean", "frac_forest"):
            assert grid[name].values[i[b], j[b]] == pytest.approx(float(store[name].sel(basin=gid)), nan_ok=True)
        assert grid["dom_land_cover"].values[i[b], j[b]] == str(store["dom_land_cover"].sel(basin=gid).values)
