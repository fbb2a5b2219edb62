"""Grids and basin attributes on them: regular and CTSM grids, rasterized basins, inverse-distance weighting.

A grid here is a pair of 1-D ascending axes of cell centres, ``lat`` (ny) and ``lon`` (nx), in
degrees; arrays on it are ``(ny, nx)``, row 0 the southernmost row.

* :func:`regular_grid` builds the axes from bounds and a resolution, with cell centres at
  ``lat0 + res/2 + k res`` (the NLDAS-2 convention; :data:`NLDAS_CONUS` at 0.125 degree gives
  224 x 464 cells, 25.0625 ... 52.9375 N and -124.9375 ... -67.0625 E);
* :func:`surfdata_grid` reads them from a CTSM surface dataset (``LATIXY[:, 0]``,
  ``LONGXY[0, :]``) with its land mask; longitudes stay as the file has them (0-360 in global
  files);
* :func:`read_basin_geometries` reads basin polygons (a GeoPackage such as
  ``ctsm_camels/basins_627.gpkg``) in EPSG:4326;
* :func:`rasterize_basins` assigns each cell the basin that contains its centre
  (:func:`rasterio.features.rasterize` with ``all_touched=False``), the smallest basin where
  nested basins overlap; basin longitudes are shifted into the grid's convention (-180..180 or
  0..360) first;
* :func:`footprint_mask` approximates land by the concave hull of the basins, buffered;
* :func:`idw_weights` finds the nearest basins of each cell by great-circle distance and
  their inverse-distance weights ``w_i = d_i^-p / sum_j d_j^-p`` (Shepard 1968,
  doi:10.1145/800186.810616);
* :func:`basin_attribute_table` reads the attributes of a basins store into a DataFrame;
* :func:`camels_grid_attributes` puts CAMELS attributes onto a grid with all of the above.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.errors import ConfigError, InputFormatError
from lsegeo.regionalize.settings import NLDAS_CONUS

__all__ = ["NLDAS_CONUS", "CAMELS_GPKG", "SOURCE_NONE", "SOURCE_BASIN", "SOURCE_IDW", "regular_grid",
           "surfdata_grid", "read_basin_geometries", "rasterize_basins", "footprint_mask", "idw_weights",
           "default_attribute_names", "basin_attribute_table", "camels_grid_attributes"]

logger = logging.getLogger(__name__)

#: the CAMELS basin polygons, relative to the data directory
CAMELS_GPKG = Path("ctsm_camels") / "basins_627.gpkg"
#: values of ``attribute_source``: no attributes (off land), inside a basin, inverse-distance weighted
SOURCE_NONE, SOURCE_BASIN, SOURCE_IDW = 0, 1, 2
#: identifiers and flags of a basins store that are no attributes
_NOT_ATTRIBUTES = frozenset({"gauge_name", "has_forcing", "has_observations", "n_observed_days"})
#: id columns looked for in a basin GeoPackage, in order (case-insensitive)
_ID_COLUMNS = ("gauge_id", "gage_id", "hru_id", "basin", "basin_id", "staid", "id")
_EARTH_RADIUS_KM = 6371.0088


def regular_grid(bounds: Sequence[float], resolution: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre axes of a regular latitude-longitude grid.

    ``lat_k = south + res/2 + k res`` for ``k = 0 .. floor((north - south) / res) - 1`` and the same
    for longitudes: the cells lie wholly inside the bounds (a strip narrower than one cell at the
    north or east edge, when the extent is no multiple of the resolution, is left out).

    Parameters
    ----------
    bounds : sequence of 4 floats
        ``(west, south, east, north)`` in degrees (e.g. :data:`NLDAS_CONUS`); longitudes in
        -180..180 or 0..360.
    resolution : float
        Cell size in degrees, the same in latitude and longitude.

    Returns
    -------
    lat, lon : numpy.ndarray
        ``(ny,)`` and ``(nx,)`` ascending float64 cell centres (degrees_north, degrees_east).

    Raises
    ------
    ConfigError
        Naming the bad value: not 4 finite bounds, ``west >= east`` or ``south >= north``,
        latitudes outside [-90, 90], longitudes outside [-180, 360] or spanning more than 360
        degrees, a resolution that is not positive or is larger than the extent.
    """
    try:
        west, south, east, north = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ConfigError(f"grid bounds {bounds!r}: expected 4 numbers (west, south, east, north)") from None
    res = float(resolution) if np.isscalar(resolution) else float("nan")
    if not np.all(np.isfinite([west, south, east, north])):
        raise ConfigError(f"grid bounds {tuple(bounds)}: every bound must be finite")
    if not np.isfinite(res) or res <= 0:
        raise ConfigError(f"grid resolution {resolution!r}: expected a positive number of degrees")
    if not -90.0 <= south < north <= 90.0:
        raise ConfigError(f"grid bounds {tuple(bounds)}: expected -90 <= south < north <= 90 "
                          f"(got south {south}, north {north})")
    if not (-180.0 <= west < east <= 360.0 and east - west <= 360.0):
        raise ConfigError(f"grid bounds {tuple(bounds)}: expected west < east, within -180..360 and at most 360 "
                          f"degrees apart (got west {west}, east {east})")
    ny, nx = (int(np.floor((hi - lo) / res + 1e-9)) for lo, hi in ((south, north), (west, east)))
    if ny < 1 or nx < 1:
        raise ConfigError(f"grid resolution {res}: larger than the extent of the bounds {tuple(bounds)}")
    return south + res * (np.arange(ny) + 0.5), west + res * (np.arange(nx) + 0.5)


def surfdata_grid(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid of a CTSM surface dataset and its land mask.

    Parameters
    ----------
    path : path-like
        A surface dataset (``surfdata_*.nc``) on a rectilinear ``(lsmlat, lsmlon)`` grid.

    Returns
    -------
    lat : numpy.ndarray
        ``(ny,)`` ascending ``LATIXY[:, 0]`` (degrees_north).
    lon : numpy.ndarray
        ``(nx,)`` ascending ``LONGXY[0, :]`` (degrees_east, as in the file: 0-360 in global files).
    land_mask : numpy.ndarray of bool
        ``(ny, nx)``: :func:`lsegeo.io.ctsm_files.surfdata_land_mask` (``LANDFRAC_PFT > 0``, else
        ``PFTDATA_MASK == 1``), rows in the order of ``lat``.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    InputFormatError
        Naming the file: no ``LONGXY``/``LATIXY``, an unstructured (1-D) grid, coordinates that
        vary along the wrong axis (not rectilinear) or are not monotonic.
    """
    from lsegeo.io.ctsm_files import read_fields, surfdata_land_mask

    fields = read_fields(path, ["LONGXY", "LATIXY"], what="surface dataset")
    lon2, lat2 = (np.asarray(fields[n].values, dtype=np.float64) for n in ("LONGXY", "LATIXY"))
    if lon2.ndim != 2:
        raise InputFormatError(str(path), None, f"LONGXY has dimensions {fields['LONGXY'].dims}: an unstructured "
                               "grid; expected a rectilinear (lsmlat, lsmlon) grid")
    lat, lon = lat2[:, 0], lon2[0, :]
    if not (np.allclose(lon2, lon[None, :], atol=1e-5) and np.allclose(lat2, lat[:, None], atol=1e-5)):
        raise InputFormatError(str(path), None, "LONGXY/LATIXY are not rectilinear (LONGXY must be constant along "
                               "lsmlat and LATIXY along lsmlon)")
    mask = np.asarray(surfdata_land_mask(path), dtype=bool)
    for name, axis in (("LATIXY", lat), ("LONGXY", lon)):
        step = np.diff(axis)
        if not (np.all(step > 0) or np.all(step < 0)):
            raise InputFormatError(str(path), None, f"{name} is not strictly monotonic along its axis")
    if lat.size > 1 and lat[1] < lat[0]:
        lat, mask = lat[::-1], mask[::-1]
    if lon.size > 1 and lon[1] < lon[0]:
        lon, mask = lon[::-1], mask[:, ::-1]
    return lat.copy(), lon.copy(), np.ascontiguousarray(mask)


def read_basin_geometries(path: str | Path, id_column: str | None = None):
    """Basin polygons in EPSG:4326, one row per basin, with a string ``gauge_id`` column.

    Parameters
    ----------
    path : path-like
        A vector file geopandas reads (GeoPackage, shapefile, ...) with one polygon per basin.
    id_column : str, optional
        The column of basin ids; by default the first of ``gauge_id``, ``gage_id``, ``hru_id``,
        ``basin``, ``basin_id``, ``staid``, ``id`` (any case). Integer ids become 8-digit strings
        (USGS station numbers keep their leading zero).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``gauge_id`` (str) and ``geometry``, reprojected to EPSG:4326 when the file has
        another CRS (a file without a CRS is taken as EPSG:4326).

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    InputFormatError
        Naming the file: no id column, duplicate ids, empty or missing geometries.
    """
    import geopandas as gpd

    from lsegeo.locations import require_file

    path = Path(path)
    require_file(path, "a file of basin polygons")
    gdf = gpd.read_file(path)
    if id_column is None:
        lower = {str(c).lower(): c for c in gdf.columns if c != gdf.geometry.name}
        id_column = next((lower[c] for c in _ID_COLUMNS if c in lower), None)
        if id_column is None:
            raise InputFormatError(str(path), None, f"no basin id column (looked for {', '.join(_ID_COLUMNS)}); "
                                   f"it has {', '.join(map(str, gdf.columns))}")
    elif id_column not in gdf.columns:
        raise InputFormatError(str(path), None, f"no column {id_column!r}; it has {', '.join(map(str, gdf.columns))}")
    ids = gdf[id_column]
    ids = ids.map(lambda v: f"{int(v):08d}") if pd.api.types.is_integer_dtype(ids) else ids.astype(str).str.strip()
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        raise InputFormatError(str(path), None, f"column {id_column!r} has duplicate basin ids {dup[:5]}")
    bad = gdf.geometry.isna() | gdf.geometry.is_empty
    if bad.any():
        raise InputFormatError(str(path), None, f"basins {list(ids[bad])[:5]} have no geometry")
    out = gpd.GeoDataFrame({"gauge_id": ids.to_numpy(dtype=object)}, geometry=gdf.geometry.values, crs=gdf.crs)
    if out.crs is None:
        out = out.set_crs("EPSG:4326")
    elif out.crs.to_epsg() != 4326:
        out = out.to_crs("EPSG:4326")
    return out


def _shift_longitudes(geometries: np.ndarray, grid_lon: np.ndarray) -> np.ndarray:
    """Geometries translated by +-360 degrees into the longitude convention of ``grid_lon``."""
    import shapely

    bounds = shapely.bounds(geometries)
    dx = np.zeros(len(geometries))
    if grid_lon.max() > 180.0:
        dx[bounds[:, 2] <= 0.0] = 360.0  # western hemisphere -> 180..360
    elif grid_lon.min() < 0.0:
        dx[bounds[:, 0] >= 180.0] = -360.0
    out = geometries.copy()
    for shift in (360.0, -360.0):
        sel = dx == shift
        if sel.any():
            out[sel] = shapely.transform(geometries[sel], lambda xy, s=shift: xy + np.array([s, 0.0]))
    return out


def _uniform_step(axis: np.ndarray) -> float | None:
    """The spacing of an evenly spaced axis (within 0.1 % of a step), else None."""
    if axis.size < 2:
        return None
    step = np.diff(axis)
    return float(step.mean()) if np.allclose(step, step.mean(), rtol=1e-3, atol=0) else None


def _check_axes(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    for name, axis in (("lat", lat), ("lon", lon)):
        if axis.ndim != 1 or axis.size == 0 or not np.all(np.isfinite(axis)):
            raise InputFormatError(f"grid axis {name}", None, "expected a non-empty 1-D array of finite degrees")
        if axis.size > 1 and not np.all(np.diff(axis) > 0):
            raise InputFormatError(f"grid axis {name}", None, "expected strictly ascending cell centres")
    if lat.min() < -90 or lat.max() > 90:
        raise InputFormatError("grid axis lat", None, f"latitudes {lat.min()}..{lat.max()} outside [-90, 90]")
    return lat, lon


def rasterize_basins(geometries: Sequence[Any], lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The basin that contains each cell centre of a grid.

    Cells take the basin whose polygon contains their centre (``all_touched=False``); where
    basins overlap (nested CAMELS basins), the smallest one: the geometries are burnt by
    decreasing area, and the last one burnt wins. Evenly spaced axes are rasterized with
    :func:`rasterio.features.rasterize` (transform ``from_origin(lon0 - dx/2, lat_max + dy/2,
    dx, dy)``, north-up, flipped to ascending latitude: ecosystem_and_formats.md section 5);
    uneven axes (some CTSM grids) by the same centre-in-polygon rule with
    :func:`shapely.contains_xy`. Geometries are shifted by 360 degrees into the grid's longitude
    convention first (western-hemisphere basins onto a 0-360 grid).

    Parameters
    ----------
    geometries : sequence of shapely geometries
        Basin polygons in EPSG:4326 (degrees).
    lat, lon : numpy.ndarray
        ``(ny,)``, ``(nx,)`` ascending cell centres.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` int64: the position of the basin in ``geometries``, -1 where no basin.
    """
    import shapely

    lat, lon = _check_axes(lat, lon)
    geoms = _shift_longitudes(np.asarray(list(geometries), dtype=object), lon)
    out = np.full((lat.size, lon.size), -1, dtype=np.int64)
    if len(geoms) == 0:
        return out
    order = np.argsort(-shapely.area(geoms), kind="stable")
    dy, dx = _uniform_step(lat), _uniform_step(lon)
    if dy is not None and dx is not None:
        from affine import Affine
        from rasterio.features import rasterize

        transform = Affine(dx, 0.0, lon[0] - dx / 2, 0.0, -dy, lat[-1] + dy / 2)  # rasterio's from_origin
        burnt = rasterize(((geoms[i], int(i)) for i in order), out_shape=out.shape, transform=transform, fill=-1,
                          dtype="int32", all_touched=False)
        return burnt[::-1].astype(np.int64)
    for i in order:  # uneven axes: test the centres inside each geometry's bounding box
        x0, y0, x1, y1 = shapely.bounds(geoms[i])
        rows = np.flatnonzero((lat >= y0) & (lat <= y1))
        cols = np.flatnonzero((lon >= x0) & (lon <= x1))
        if rows.size and cols.size:
            yy, xx = np.meshgrid(lat[rows], lon[cols], indexing="ij")
            inside = shapely.contains_xy(geoms[i], xx, yy)
            sub = out[np.ix_(rows, cols)]
            sub[inside] = i
            out[np.ix_(rows, cols)] = sub
    return out


def footprint_mask(geometries: Sequence[Any], lat: np.ndarray, lon: np.ndarray, *, buffer: float = 0.5,
                   ratio: float = 0.3, simplify: float = 0.01) -> np.ndarray:
    """Approximate land: the cells inside the buffered concave hull of some basins.

    The footprint, ``concave_hull(basins, ratio).buffer(buffer)`` (:func:`shapely.concave_hull`
    of the basins simplified to ``simplify`` degrees), stands in for a land mask when none is
    given: it covers the basins and the land between them, but also coastal water inside the
    hull, and misses land far from any basin. Give a real land mask whenever one exists.

    Parameters
    ----------
    geometries : sequence of shapely geometries
        Basin polygons in EPSG:4326.
    lat, lon : numpy.ndarray
        ``(ny,)``, ``(nx,)`` ascending cell centres.
    buffer : float
        Buffer distance in degrees.
    ratio : float
        Concave hull ratio in (0, 1]: 1 is the convex hull, smaller follows the basins closer.
    simplify : float
        Tolerance in degrees of the simplification before the hull (speed only).

    Returns
    -------
    numpy.ndarray of bool
        ``(ny, nx)``, True inside.
    """
    import shapely

    lat, lon = _check_axes(lat, lon)
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"footprint ratio {ratio}: expected a number in (0, 1]")
    geoms = _shift_longitudes(np.asarray(list(geometries), dtype=object), lon)
    if len(geoms) == 0:
        return np.zeros((lat.size, lon.size), dtype=bool)
    parts = shapely.get_parts(shapely.simplify(geoms, simplify))
    hull = shapely.concave_hull(shapely.MultiPolygon(list(parts)), ratio=ratio).buffer(buffer)
    shapely.prepare(hull)
    xx, yy = np.meshgrid(lon, lat)
    return shapely.contains_xy(hull, xx, yy)


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def idw_weights(src_lat: np.ndarray, src_lon: np.ndarray, lat: np.ndarray, lon: np.ndarray, *, k: int = 8,
                   power: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` nearest sources of each point by great-circle distance, and inverse-distance weights.

    Points are unit vectors on the sphere, searched with :class:`scipy.spatial.cKDTree`; the
    chord ``c`` becomes the great-circle distance ``d = 2 R asin(c / 2)`` (R = 6371.0088 km, the
    mean Earth radius). Weights are ``w_i = d_i^-p / sum_j d_j^-p`` (Shepard 1968); a point
    within 1 m of a source takes that source alone.

    Parameters
    ----------
    src_lat, src_lon : numpy.ndarray
        ``(m,)`` sources (basin centroids), degrees.
    lat, lon : numpy.ndarray
        ``(n,)`` points (cell centres), degrees; any longitude convention.
    k, power : int, float
        Neighbours per point (at most ``m``) and the exponent ``p`` (> 0).

    Returns
    -------
    index : numpy.ndarray
        ``(n, k)`` int64 positions of the nearest sources, nearest first.
    distance_km : numpy.ndarray
        ``(n, k)`` great-circle distances in km.
    weight : numpy.ndarray
        ``(n, k)`` weights; each row sums to 1.
    """
    from scipy.spatial import cKDTree

    if k < 1 or power <= 0:
        raise ConfigError(f"inverse-distance weighting: expected idw_neighbours >= 1 and idw_power > 0, got {k} "
                          f"and {power}")
    k = min(int(k), len(src_lat))
    tree = cKDTree(_unit_vectors(np.asarray(src_lat, float), np.asarray(src_lon, float)))
    chord, index = tree.query(_unit_vectors(np.asarray(lat, float), np.asarray(lon, float)), k=k)
    chord, index = chord.reshape(len(lat), k), index.reshape(len(lat), k).astype(np.int64)
    dist = 2.0 * _EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
    exact = dist < 1e-3
    with np.errstate(divide="ignore"):
        w = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), dist ** -float(power))
    return index, dist, w / w.sum(axis=1, keepdims=True)


def default_attribute_names(ds: xr.Dataset) -> list[str]:
    """The attributes of a basins store's ``attributes`` group that describe a basin without streamflow.

    Every numeric or text data variable except identifiers and flags (``gauge_name``,
    ``has_forcing``, ``has_observations``, ``n_observed_days``) and the streamflow signatures
    (variables read from ``camels_hydro.txt``: they need observed streamflow, which an unseen
    target has not), followed by ``area_gages2`` (the coordinate ``area``).
    """
    names = [str(n) for n, v in ds.data_vars.items()
             if n not in _NOT_ATTRIBUTES and v.dims == ("basin",) and v.dtype.kind in "fiuUOTS"
             and v.attrs.get("camels_table") != "camels_hydro.txt"]
    return names + (["area_gages2"] if "area" in ds.coords and "area_gages2" not in names else [])


def basin_attribute_table(ds: xr.Dataset, names: Sequence[str] | None = None, *, where: str = "basins store"
                          ) -> pd.DataFrame:
    """The attributes of a basins store as a DataFrame, one row per basin.

    Parameters
    ----------
    ds : xarray.Dataset
        The ``attributes`` group (:func:`lsegeo.io.stores.open_store`).
    names : sequence of str, optional
        Attributes, by their CAMELS names (``area_gages2`` is read from the coordinate ``area``:
        :data:`lsegeo.emulators.features.ATTRIBUTE_ALIASES`); default
        :func:`default_attribute_names`.
    where : str
        The store, for messages.

    Returns
    -------
    pandas.DataFrame
        Index the gauge ids (str); numeric attributes float64, text ones object (``""`` missing).

    Raises
    ------
    InputFormatError
        Naming the store and every attribute it lacks.
    """
    import dask

    from lsegeo.emulators.features import ATTRIBUTE_ALIASES

    names = default_attribute_names(ds) if names is None else list(dict.fromkeys(names))
    keys = {n: n if n in ds.variables else ATTRIBUTE_ALIASES.get(n) for n in names}
    missing = [n for n, key in keys.items() if key is None or key not in ds.variables]
    if missing:
        raise InputFormatError(where, None, f"has no attribute(s) {', '.join(missing)}; it has "
                               f"{', '.join(sorted(map(str, ds.data_vars)))}")
    with dask.config.set(scheduler="synchronous"):
        loaded = ds[list(dict.fromkeys(keys.values()))].load() if keys else ds
    cols = {}
    for name, key in keys.items():
        values = np.asarray(loaded[key].values)
        if values.dtype.kind in "fiub":
            cols[name] = values.astype(np.float64)
        else:
            cols[name] = np.array(["" if v is None or v != v else str(v) for v in values.tolist()], dtype=object)
    index = pd.Index([str(b) for b in np.asarray(ds["basin"].values).tolist()], name="basin", dtype=object)
    return pd.DataFrame(cols, index=index)


def camels_grid_attributes(lat: np.ndarray, lon: np.ndarray, basins_store: str | Path, gpkg: str | Path | None = None,
                           land_mask: np.ndarray | None = None, names: Sequence[str] | None = None,
                           idw_neighbours: int = 8, idw_power: float = 2.0, *, footprint_buffer: float = 0.5,
                           footprint_ratio: float = 0.3) -> xr.Dataset:
    """CAMELS basin attributes on a grid: a basin's own inside it, inverse-distance weighted elsewhere.

    1. The basin polygons (``gpkg``) are rasterized (:func:`rasterize_basins`): a land cell whose
       centre lies in a basin takes that basin's attributes (the smallest of nested basins);
       basins of the file that the store lacks are skipped (their count is logged).
    2. Every other land cell takes, for each numeric attribute, the inverse-distance weighted
       mean over the ``idw_neighbours`` basins whose centroids are nearest by great-circle
       distance (:func:`idw_weights`; neighbours with a missing value are left out and the
       weights of the others renormalised), and for each text (categorical) attribute the value
       of the nearest of them that has one.
    3. Land is ``land_mask`` when given; otherwise the footprint of the basins
       (:func:`footprint_mask`: the concave hull of the basins buffered by
       ``footprint_buffer`` degrees), an approximation (docs/domains.md).

    Parameters
    ----------
    lat, lon : numpy.ndarray
        ``(ny,)``, ``(nx,)`` ascending cell centres (degrees; longitudes -180..180 or 0..360).
    basins_store : path-like
        A basins store; its ``attributes`` group gives the values.
    gpkg : path-like, optional
        Basin polygons; default ``ctsm_camels/basins_627.gpkg`` of the data directory
        (:func:`lsegeo.locations.resolve_data_dir`).
    land_mask : numpy.ndarray, optional
        ``(ny, nx)``, nonzero on land.
    names : sequence of str, optional
        Attributes; default :func:`default_attribute_names` of the store.
    idw_neighbours, idw_power : int, float
        Basins per inverse-distance weighted cell and the exponent of the inverse distance.
    footprint_buffer, footprint_ratio : float
        Of the land footprint used without ``land_mask`` (:func:`footprint_mask`).

    Returns
    -------
    xarray.Dataset
        On ``(lat, lon)``: one variable per attribute (float64, NaN off land; text: ``""`` off
        land), ``attribute_source`` int8 (0 off land, 1 inside a basin, 2 inverse-distance
        weighted), ``source_basin`` str (gauge id of the containing basin, ``""`` elsewhere),
        ``land_mask`` int8 (1 land). Attribute ``lsegeo_inputs`` (JSON): input -> sha256 or store digest.

    Raises
    ------
    InputFormatError
        A ``land_mask`` of the wrong shape; a store without an attribute asked for; no basin of
        the file in the store; bad axes.
    DataNotFoundError
        The GeoPackage or the store does not exist.
    """
    import json

    import shapely

    from lsegeo.io.marks import store_digest
    from lsegeo.io.stores import open_store
    from lsegeo.locations import resolve_data_dir
    from lsegeo.provenance import sha256_file

    t0 = time.perf_counter()
    lat, lon = _check_axes(lat, lon)
    shape = (lat.size, lon.size)
    gpkg = Path(gpkg) if gpkg is not None else resolve_data_dir(expect=str(CAMELS_GPKG)) / CAMELS_GPKG
    table = basin_attribute_table(open_store(basins_store, "attributes"), names, where=f"basins store {basins_store}")
    basins = read_basin_geometries(gpkg)
    known = basins["gauge_id"].isin(table.index).to_numpy()
    if (~known).sum():
        logger.info("%d of the %d basins of %s are not in %s and are skipped", int((~known).sum()), len(basins), gpkg,
                    basins_store)
    basins = basins[known].reset_index(drop=True)
    if basins.empty:
        raise InputFormatError(str(gpkg), None, f"none of its basins is in the basins store {basins_store}")
    if land_mask is None:
        land = footprint_mask(basins.geometry.values, lat, lon, buffer=footprint_buffer, ratio=footprint_ratio)
    else:
        land = np.asarray(land_mask)
        if land.shape != shape:
            raise InputFormatError("land_mask", None, f"shape {land.shape}; expected the grid's (lat, lon) {shape}")
        land = np.where(np.isfinite(land), land, 0) != 0 if land.dtype.kind == "f" else land.astype(bool)
    burnt = rasterize_basins(basins.geometry.values, lat, lon)
    inside = land & (burnt >= 0)
    idw = land & (burnt < 0)
    source = np.where(inside, SOURCE_BASIN, np.where(idw, SOURCE_IDW, SOURCE_NONE)).astype(np.int8)

    values = table.loc[basins["gauge_id"].to_numpy()]
    centroids = shapely.centroid(basins.geometry.values)
    yy, xx = np.meshgrid(lat, lon, indexing="ij")
    flat_idw = np.flatnonzero(idw)
    index, _, weight = idw_weights(shapely.get_y(centroids), shapely.get_x(centroids), yy.ravel()[flat_idw],
                                   xx.ravel()[flat_idw], k=idw_neighbours, power=idw_power)
    flat_in = np.flatnonzero(inside)
    basin_of_cell = burnt.ravel()[flat_in]
    data: dict[str, Any] = {}
    for name in values.columns:
        col = values[name].to_numpy()
        if col.dtype == object:
            out = np.full(lat.size * lon.size, "", dtype=object)
            out[flat_in] = col[basin_of_cell]
            cand = col[index]  # (n_idw, k), nearest first
            has = cand != ""
            first = np.where(has.any(axis=1), has.argmax(axis=1), 0)
            out[flat_idw] = cand[np.arange(len(flat_idw)), first] if len(flat_idw) else []
        else:
            out = np.full(lat.size * lon.size, np.nan)
            out[flat_in] = col[basin_of_cell]
            out[flat_idw] = _weighted(col, index, weight)
        data[name] = (("lat", "lon"), out.reshape(shape))
    gauge = np.full(lat.size * lon.size, "", dtype=object)
    gauge[flat_in] = basins["gauge_id"].to_numpy()[basin_of_cell]
    data["attribute_source"] = (("lat", "lon"), source, {
        "long_name": "where the attributes of the cell come from",
        "flag_values": np.array([0, 1, 2], dtype=np.int8),
        "flag_meanings": "none inside_basin inverse_distance_weighted"})
    data["source_basin"] = (("lat", "lon"), gauge.reshape(shape),
                            {"long_name": "gauge id of the basin that contains the cell centre ('' if none)"})
    data["land_mask"] = (("lat", "lon"), land.astype(np.int8), {
        "long_name": "land mask (1 land)", "comment": "the given land mask" if land_mask is not None else
        f"approximated by the concave hull (ratio {footprint_ratio}) of the basins buffered by {footprint_buffer} "
        "degree"})
    inputs = {gpkg.name: sha256_file(gpkg), Path(basins_store).name: store_digest(basins_store)}
    ds = xr.Dataset(data, coords={"lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
                                  "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"})},
                    attrs={"title": "CAMELS attributes on a grid", "lsegeo_inputs": json.dumps(inputs),
                           "lsegeo_idw": json.dumps({"neighbours": int(idw_neighbours), "power": float(idw_power)})})
    logger.info("CAMELS attributes on a %d x %d grid: %d land cells, %d inside %d basins, %d by inverse-distance "
                "weighting (%.1f s)", *shape, int(land.sum()), len(flat_in), len(basins), len(flat_idw),
                time.perf_counter() - t0)
    return ds


def _weighted(col: np.ndarray, index: np.ndarray, weight: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Inverse-distance weighted means of ``col`` over the neighbours, missing values left out."""
    out = np.empty(len(index))
    for start in range(0, len(index), chunk):
        v = col[index[start:start + chunk]]
        w = np.where(np.isnan(v), 0.0, weight[start:start + chunk])
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + chunk] = np.where(total > 0, (w * np.nan_to_num(v)).sum(axis=1) / total, np.nan)
    return out
