"""Target domains of regionalization: where parameters are wanted, and the attributes there.

A :class:`Domain` is a list of targets (basins, rows of a table, or land cells of a grid), each
with a location and one row of raw (unencoded) attributes; the emulator's attribute encoder
(:class:`lsegeo.emulators.features.AttributeEncoder`) turns the rows into features. Builders:

* :func:`basins_domain`: basins of a basins store (by default those without observed
  streamflow), their attributes from the store's ``attributes`` group;
* :func:`table_domain`: a CSV or parquet file, one row per target with an id, ``lat``, ``lon``
  and attribute columns;
* :func:`grid_domain`: a grid (:func:`~lsegeo.regionalize.rasterize.regular_grid`,
  :func:`~lsegeo.regionalize.rasterize.surfdata_grid`) with a user's dataset of one variable per
  attribute on ``(lat, lon)``; the targets are its land cells;
* :func:`camels_grid_domain`: a grid whose attributes come from the CAMELS basins
  (:func:`~lsegeo.regionalize.rasterize.camels_grid_attributes`: a basin's own inside it,
  inverse-distance weighted elsewhere).

The targets of a grid are its land cells in row-major order of ``(lat, lon)`` (latitude
ascending); target ``i`` is cell ``cell[i]`` of the flattened grid and is named
``f"cell{cell[i]}"``. :meth:`Domain.to_grid` puts per-target results back on the grid.
docs/domains.md describes the domains and how attributes get onto a grid.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.errors import ConfigError, InputFormatError, UnknownBasinError
from lsegeo.regionalize.rasterize import (
    NLDAS_CONUS,
    SOURCE_BASIN,
    SOURCE_IDW,
    basin_attribute_table,
    camels_grid_attributes,
    regular_grid,
    surfdata_grid,
)

__all__ = ["Domain", "BASIN_SELECTIONS", "GRID_EXTRA_VARIABLES", "basins_domain", "table_domain", "grid_domain",
           "camels_grid_domain", "regular_grid", "surfdata_grid", "camels_grid_attributes", "NLDAS_CONUS"]

logger = logging.getLogger(__name__)

#: the named basin selections of :func:`basins_domain`
BASIN_SELECTIONS = ("unobserved", "observed", "all")
#: variables of a grid attribute dataset that are no attributes
GRID_EXTRA_VARIABLES = frozenset({"land_mask", "attribute_source", "source_basin", "spatial_ref"})
#: a target's location, looked up when an attribute of that name is asked for
_LOCATION = {"lat": "lat", "lon": "lon", "gauge_lat": "lat", "gauge_lon": "lon"}


@dataclass
class Domain:
    """Targets of regionalization with their locations and raw attributes.

    Attributes
    ----------
    kind : str
        ``"basins"``, ``"table"`` or ``"grid"``.
    name : str
        Short name, e.g. ``"camels_unobserved"``, ``"nldas_0.125deg"``.
    targets : list of str
        Basin ids, table row ids, or for grids ``f"cell{cell[i]}"``.
    attributes : pandas.DataFrame
        Index ``targets``; one column per raw attribute (numeric float64, text object with
        ``""`` missing), one row per target in the order of ``targets``.
    lat, lon : numpy.ndarray
        ``(n,)`` degrees_north / degrees_east of each target (gauge or cell centre).
    grid_lat, grid_lon : numpy.ndarray or None
        ``(ny,)``, ``(nx,)`` ascending cell centres (grids only).
    cell : numpy.ndarray or None
        ``(n,)`` int64 row-major flat index of each target into ``(ny, nx)`` (grids only).
    attribute_source : numpy.ndarray or None
        ``(n,)`` int8: 1 the cell lies in a basin (its attributes), 2 inverse-distance weighted
        (grids built from basins only).
    inputs : dict of str to str
        Input name -> sha256 (or store id), for provenance.
    description : str
        One line for the product summary.
    """

    kind: str
    name: str
    targets: list[str]
    attributes: pd.DataFrame
    lat: np.ndarray
    lon: np.ndarray
    grid_lat: np.ndarray | None = None
    grid_lon: np.ndarray | None = None
    cell: np.ndarray | None = None
    attribute_source: np.ndarray | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("basins", "table", "grid"):
            raise ConfigError(f"domain {self.name!r}: kind {self.kind!r}; expected basins, table or grid")
        n = len(self.targets)
        self.targets = [str(t) for t in self.targets]
        self.lat, self.lon = np.asarray(self.lat, dtype=np.float64), np.asarray(self.lon, dtype=np.float64)
        sizes = {"attributes": len(self.attributes), "lat": self.lat.size, "lon": self.lon.size}
        if self.cell is not None:
            self.cell = np.asarray(self.cell, dtype=np.int64)
            sizes["cell"] = self.cell.size
        if self.attribute_source is not None:
            self.attribute_source = np.asarray(self.attribute_source, dtype=np.int8)
            sizes["attribute_source"] = self.attribute_source.size
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise InputFormatError(f"domain {self.name}", None, f"{n} targets but {wrong}")
        if list(map(str, self.attributes.index)) != self.targets:
            raise InputFormatError(f"domain {self.name}", None, "the attribute rows are not in the order of targets")
        if self.kind == "grid":
            if self.grid_lat is None or self.grid_lon is None or self.cell is None:
                raise InputFormatError(f"domain {self.name}", None, "a grid domain needs grid_lat, grid_lon and cell")
            self.grid_lat = np.asarray(self.grid_lat, dtype=np.float64)
            self.grid_lon = np.asarray(self.grid_lon, dtype=np.float64)
            size = self.grid_lat.size * self.grid_lon.size
            if n and (self.cell.min() < 0 or self.cell.max() >= size):
                raise InputFormatError(f"domain {self.name}", None, f"cell indices outside the grid of {size} cells")

    def __len__(self) -> int:
        """The number of targets."""
        return len(self.targets)

    @property
    def grid_shape(self) -> tuple[int, int] | None:
        """``(ny, nx)`` of a grid domain, else None."""
        if self.grid_lat is None or self.grid_lon is None:
            return None
        return self.grid_lat.size, self.grid_lon.size

    def to_grid(self, values: Any, fill: Any = np.nan) -> np.ndarray:
        """Per-target values on the grid.

        Parameters
        ----------
        values : array-like
            ``(n,)`` or ``(n, *rest)``, one entry per target.
        fill : scalar
            Value off land (cells that are no target).

        Returns
        -------
        numpy.ndarray
            ``(ny, nx, *rest)``; its dtype holds both ``values`` and ``fill`` (float for integer
            values with the default NaN fill).

        Raises
        ------
        ConfigError
            The domain is no grid.
        InputFormatError
            ``values`` does not have one entry per target.
        """
        shape = self.grid_shape
        if shape is None or self.cell is None:
            raise ConfigError(f"domain {self.name!r} is a {self.kind} domain: it has no grid")
        values = np.asarray(values)
        if values.ndim == 0 or values.shape[0] != len(self):
            raise InputFormatError(f"domain {self.name}", None, f"values of shape {values.shape}; expected "
                                   f"({len(self)}, ...): one entry per target")
        text = values.dtype.kind in "OUST"
        dtype = object if text else np.result_type(values.dtype, fill)  # a Python scalar fill is weakly typed
        out = np.full((shape[0] * shape[1], *values.shape[1:]), fill, dtype=dtype)
        out[self.cell] = values
        return out.reshape(*shape, *values.shape[1:])

    def chunks(self, size: int) -> Iterator[slice]:
        """Consecutive slices of at most ``size`` targets that cover the domain, for chunked work."""
        if int(size) < 1:
            raise ConfigError(f"chunk size {size}: expected a positive number of targets")
        for start in range(0, len(self), int(size)):
            yield slice(start, min(start + int(size), len(self)))

    def attribute_rows(self, names: Sequence[str]) -> pd.DataFrame:
        """The attributes ``names``, in that order, one row per target.

        A name missing as a column is looked up under its alias
        (:data:`lsegeo.emulators.features.ATTRIBUTE_ALIASES`: ``area_gages2`` / ``area``) and
        ``lat``, ``lon``, ``gauge_lat``, ``gauge_lon`` are the targets' locations.

        Raises
        ------
        InputFormatError
            Naming the domain and every attribute it lacks (an emulator needs all of its own).
        """
        from lsegeo.emulators.features import ATTRIBUTE_ALIASES

        reverse = {v: k for k, v in ATTRIBUTE_ALIASES.items()}
        cols, missing = {}, []
        for name in names:
            for key in (name, ATTRIBUTE_ALIASES.get(name), reverse.get(name)):
                if key is not None and key in self.attributes.columns:
                    cols[name] = self.attributes[key].to_numpy()
                    break
            else:
                if name in _LOCATION:
                    cols[name] = getattr(self, _LOCATION[name])
                else:
                    missing.append(name)
        if missing:
            raise InputFormatError(f"domain {self.name}", None, f"has no attribute(s) {', '.join(missing)} that the "
                                   f"emulator needs; it has {', '.join(map(str, self.attributes.columns))}")
        return pd.DataFrame(cols, index=self.attributes.index)


def _with_aliases(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with both names of every aliased attribute present (``area`` and ``area_gages2``)."""
    from lsegeo.emulators.features import ATTRIBUTE_ALIASES

    out = table.copy()
    for name, alias in ATTRIBUTE_ALIASES.items():
        if alias in _LOCATION:
            continue  # the locations are the domain's lat/lon
        if name in out.columns and alias not in out.columns:
            out[alias] = out[name]
        elif alias in out.columns and name not in out.columns:
            out[name] = out[alias]
    return out


def basins_domain(basins_store: str | Path, basins: str | Sequence[str] = "unobserved",
                  attributes: Sequence[str] | None = None, *, name: str | None = None,
                  gpkg: str | Path | None = None) -> Domain:
    """Basins of a basins store as a domain.

    Parameters
    ----------
    basins_store : path-like
        A basins store (:mod:`lsegeo.ingest.camels`); its ``attributes`` group.
    basins : str or sequence of str
        ``"unobserved"`` (``has_observations`` false: the basins without observed streamflow),
        ``"observed"``, ``"all"``, or gauge ids.
    attributes : sequence of str, optional
        Attributes to keep; default every basin attribute of the store
        (:func:`~lsegeo.regionalize.rasterize.default_attribute_names`). ``area_gages2`` and
        ``area`` are both columns when either is.
    name : str, optional
        Domain name; default ``<store stem without "_basins">_<selection>``.
    gpkg : path-like, optional
        Basin polygons with centroids (default the CAMELS polygons of the data directory, when
        present): see :func:`~lsegeo.regionalize.training.basin_locations`.

    Returns
    -------
    Domain
        Kind ``"basins"``, targets in store order (or in the order of the ids given);
        ``lat``/``lon`` are the basin locations as the training basins have them (polygon
        centroids where known, else the gauge), so that ``donor-nearest`` measures the same
        centroid distance as in the cross-validation; inputs ``{store file name: store id}``.

    Raises
    ------
    ConfigError
        An unknown selection name.
    UnknownBasinError
        Naming every requested id the store lacks.
    InputFormatError
        The selection is empty, or an attribute asked for is not in the store.
    StoreError
        The store cannot be opened.
    """
    from lsegeo.io.marks import store_digest
    from lsegeo.io.stores import open_store

    store = Path(basins_store)
    ds = open_store(store, "attributes")
    ids = [str(b) for b in np.asarray(ds["basin"].values).tolist()]
    if isinstance(basins, str):
        if basins not in BASIN_SELECTIONS:
            raise ConfigError(f"basins {basins!r}: expected one of {', '.join(BASIN_SELECTIONS)} or a list of "
                              "gauge ids")
        if basins == "all":
            chosen = ids
        else:
            if "has_observations" not in ds:
                raise InputFormatError(str(store), None, "the attributes group has no variable has_observations")
            has = np.asarray(ds["has_observations"].values, dtype=bool)
            chosen = [b for b, h in zip(ids, has, strict=True) if h == (basins == "observed")]
        selection = basins
    else:
        chosen = [str(b) for b in basins]
        unknown = [b for b in chosen if b not in set(ids)]
        if unknown:
            raise UnknownBasinError(f"unknown gauge id(s) {', '.join(unknown)}: not in the basins store {store}")
        selection = "list"
    if not chosen:
        raise InputFormatError(str(store), None, f"no basins are {selection} (the domain would be empty)")
    table = _with_aliases(basin_attribute_table(ds, attributes, where=f"basins store {store}")).loc[chosen]
    from lsegeo.provenance import sha256_file
    from lsegeo.regionalize.training import basin_locations, camels_polygons

    gpkg = camels_polygons() if gpkg is None else Path(gpkg)
    position = pd.Index(ids).get_indexer(chosen)
    gauge = pd.DataFrame({c: np.asarray(ds[c].values, dtype=np.float64)[position] for c in ("lat", "lon")},
                         index=chosen)
    lat, lon, where = basin_locations(gauge, gpkg)  # as the training basins are placed: one distance for both
    stem = store.name.removesuffix(".zarr").removesuffix("_basins")
    label = {"unobserved": "without observed streamflow", "observed": "with observed streamflow", "all": "",
             "list": "chosen by id"}[selection]
    return Domain(kind="basins", name=name or f"{stem}_{selection}", targets=chosen, attributes=table, lat=lat,
                  lon=lon, inputs={store.name: store_digest(store),
                                   **({gpkg.name: sha256_file(gpkg)} if gpkg is not None else {})},
                  description=f"{len(chosen)} basins {label} of the basins store {store.name}; "
                              f"locations: {where}".replace("  ", " "))


def _read_table(path: Path, id_column: str | None) -> pd.DataFrame:
    from lsegeo.locations import require_file

    require_file(path, "a table of targets (CSV or parquet)")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            table = pd.read_parquet(path)
        except ImportError as err:
            raise InputFormatError(str(path), None, f"parquet cannot be read here ({err}); give a CSV") from err
        except Exception as err:
            raise InputFormatError(str(path), None, f"not a readable parquet file ({err})") from err
        if not isinstance(table.index, pd.RangeIndex):
            table = table.reset_index()
        return table
    try:
        header = pd.read_csv(path, nrows=0).columns
        text = {str(header[0])} if len(header) else set()
        return pd.read_csv(path, dtype={c: str for c in text | ({id_column} if id_column else set())})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise InputFormatError(str(path), None, f"not a readable CSV table ({err})") from err


def table_domain(path: str | Path, id_column: str | None = None, lat: str = "lat", lon: str = "lon", *,
                 name: str | None = None) -> Domain:
    """A table of targets (CSV or parquet) as a domain: one row per target with its attributes.

    Parameters
    ----------
    path : path-like
        ``.csv`` (or ``.parquet``/``.pq``) with an id column, latitude and longitude columns and one
        column per attribute (text columns are categorical; empty cells are missing).
    id_column : str, optional
        The column of target ids (read as text, so ``01013500`` keeps its zero); default the
        first column.
    lat, lon : str
        The columns of latitude (degrees_north, [-90, 90]) and longitude (degrees_east).
    name : str, optional
        Domain name; default the file's stem.

    Returns
    -------
    Domain
        Kind ``"table"``; attributes are every other column; inputs ``{file name: sha256}``.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    InputFormatError
        Naming the file and the column: no such column, an empty table, missing or duplicate
        ids, non-finite coordinates, latitudes outside [-90, 90] or longitudes outside -180..360.
    """
    from lsegeo.provenance import sha256_file

    path = Path(path)
    table = _read_table(path, id_column)
    id_column = id_column if id_column is not None else (str(table.columns[0]) if len(table.columns) else "")
    for role, col in (("id", id_column), ("latitude", lat), ("longitude", lon)):
        if col not in table.columns:
            raise InputFormatError(str(path), None, f"no {role} column {col!r}; it has "
                                   f"{', '.join(map(str, table.columns)) or 'no columns'}")
    if table.empty:
        raise InputFormatError(str(path), None, "the table has no rows")
    ids = table[id_column].astype(object)
    if ids.isna().any() or (ids.astype(str).str.strip() == "").any():
        raise InputFormatError(str(path), None, f"column {id_column!r} has empty ids")
    ids = ids.astype(str).str.strip()
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        raise InputFormatError(str(path), None, f"column {id_column!r} has duplicate ids {', '.join(dup[:5])}")
    coords = {}
    for col, lo, hi in ((lat, -90.0, 90.0), (lon, -180.0, 360.0)):
        values = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values < lo) | (values > hi)
        if bad.any():
            rows = ", ".join(ids[bad].tolist()[:5])
            raise InputFormatError(str(path), None, f"column {col!r}: non-finite values or values outside "
                                   f"[{lo}, {hi}] for the ids {rows}")
        coords[col] = values
    attrs = {}
    for col in table.columns:
        if col in (id_column, lat, lon):
            continue
        values = table[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            attrs[str(col)] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            attrs[str(col)] = np.array(["" if pd.isna(v) else str(v).strip() for v in values], dtype=object)
    index = pd.Index(ids.tolist(), dtype=object, name="target")
    frame = _with_aliases(pd.DataFrame(attrs, index=index))
    return Domain(kind="table", name=name or path.stem, targets=ids.tolist(), attributes=frame, lat=coords[lat],
                  lon=coords[lon], inputs={path.name: sha256_file(path)},
                  description=f"{len(ids)} targets of the table {path.name}")


def _check_same_axis(given: np.ndarray, have: np.ndarray, axis: str, where: str) -> None:
    if given.shape != have.shape:
        raise InputFormatError(where, None, f"axis {axis} has {have.size} values; the grid has {given.size}")
    off = np.flatnonzero(~np.isclose(given, have, rtol=0, atol=1e-6))
    if off.size:
        i = int(off[0])
        raise InputFormatError(where, None, f"axis {axis} differs from the grid's at position {i} ({have[i]} against "
                               f"{given[i]}); {off.size} values differ")


def grid_domain(lat: np.ndarray, lon: np.ndarray, attributes: xr.Dataset, land_mask: np.ndarray | None = None,
                name: str = "grid", *, inputs: Mapping[str, str] | None = None, description: str | None = None
                ) -> Domain:
    """A grid as a domain: its land cells, each with the attributes of a dataset on ``(lat, lon)``.

    Land is ``land_mask`` when given (attribute NaNs on land stay NaN: the emulator's encoder
    fills them), else the dataset's own ``land_mask`` variable, else the cells where at least
    one attribute has a value (finite, or non-empty text).

    Parameters
    ----------
    lat, lon : numpy.ndarray
        ``(ny,)``, ``(nx,)`` strictly ascending cell centres (degrees).
    attributes : xarray.Dataset
        One variable per attribute on ``(lat, lon)``, with coordinates ``lat`` and ``lon`` equal to
        the grid's (within 1e-6 degree; either order). ``land_mask``, ``attribute_source``,
        ``source_basin`` and ``spatial_ref`` are not attributes; ``attribute_source`` is kept.
    land_mask : numpy.ndarray, optional
        ``(ny, nx)``, nonzero on land.
    name : str
        Domain name.
    inputs : mapping, optional
        Input -> sha256 of a file or digest of a store (:func:`lsegeo.io.marks.store_digest`);
        default the dataset's ``lsegeo_inputs`` attribute (JSON).
    description : str, optional
        One line; a default names the grid size and the land cells.

    Returns
    -------
    Domain
        Kind ``"grid"``; targets ``f"cell{i}"`` of the land cells in row-major order.

    Raises
    ------
    InputFormatError
        Axes that differ from the dataset's (naming the axis and the first differing position),
        a variable not on ``(lat, lon)``, a land mask of another shape, no attribute variable, or
        no land cell ("the grid has no land cells").
    """
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    where = f"attributes of grid {name}"
    for axis, values in (("lat", lat), ("lon", lon)):
        if values.ndim != 1 or values.size == 0 or (values.size > 1 and not np.all(np.diff(values) > 0)):
            raise InputFormatError(where, None, f"grid axis {axis}: expected a non-empty strictly ascending 1-D array")
        if axis not in attributes.coords:
            raise InputFormatError(where, None, f"the dataset has no coordinate {axis!r}")
    ds = attributes.sortby(["lat", "lon"])
    for axis, values in (("lat", lat), ("lon", lon)):
        _check_same_axis(values, np.asarray(ds[axis].values, dtype=np.float64), axis, where)
    shape = (lat.size, lon.size)
    names = [str(n) for n in ds.data_vars if n not in GRID_EXTRA_VARIABLES]
    if not names:
        raise InputFormatError(where, None, "the dataset has no attribute variable")
    for n in [*names, *(v for v in ("land_mask", "attribute_source") if v in ds)]:
        if set(ds[n].dims) != {"lat", "lon"}:
            raise InputFormatError(where, None, f"variable {n!r} has dimensions {ds[n].dims}; expected (lat, lon)")
    ds = ds.transpose("lat", "lon", ...)
    cols = {}
    for n in names:
        values = np.asarray(ds[n].values).reshape(-1)
        if values.dtype.kind in "fiub":
            cols[n] = values.astype(np.float64)
        else:
            cols[n] = np.array(["" if v is None or v != v else str(v) for v in values.tolist()], dtype=object)
    if land_mask is None and "land_mask" in ds:
        land_mask = np.asarray(ds["land_mask"].values)
    if land_mask is not None:
        land = np.asarray(land_mask)
        if land.shape != shape:
            raise InputFormatError(where, None, f"land_mask of shape {land.shape}; expected the grid's {shape}")
        land = (np.nan_to_num(land.astype(np.float64)) != 0).reshape(-1)
    else:
        land = np.zeros(lat.size * lon.size, dtype=bool)
        for values in cols.values():
            land |= np.isfinite(values) if values.dtype != object else values != ""
    cell = np.flatnonzero(land)
    if cell.size == 0:
        raise InputFormatError(where, None, f"the grid has no land cells ({shape[0]} x {shape[1]} cells, "
                               f"{'none land in the land mask' if land_mask is not None else 'no attribute values'})")
    targets = [f"cell{i}" for i in cell]
    frame = _with_aliases(pd.DataFrame({n: v[cell] for n, v in cols.items()},
                                       index=pd.Index(targets, dtype=object, name="target")))
    source = np.asarray(ds["attribute_source"].values).reshape(-1)[cell] if "attribute_source" in ds else None
    yy, xx = np.meshgrid(lat, lon, indexing="ij")
    if inputs is None:
        inputs = json.loads(attributes.attrs.get("lsegeo_inputs", "{}"))
    return Domain(kind="grid", name=name, targets=targets, attributes=frame, lat=yy.reshape(-1)[cell],
                  lon=xx.reshape(-1)[cell], grid_lat=lat, grid_lon=lon, cell=cell, attribute_source=source,
                  inputs=dict(inputs),
                  description=description or f"{shape[0]} x {shape[1]} grid, {cell.size} land cells")


def camels_grid_domain(lat: np.ndarray, lon: np.ndarray, basins_store: str | Path, gpkg: str | Path | None = None,
                       land_mask: np.ndarray | None = None, names: Sequence[str] | None = None,
                       idw_neighbours: int = 8, idw_power: float = 2.0, *, name: str = "camels_grid",
                       footprint_buffer: float = 0.5, footprint_ratio: float = 0.3) -> Domain:
    """A grid whose attributes come from the CAMELS basins, as a domain.

    :func:`~lsegeo.regionalize.rasterize.camels_grid_attributes` (same parameters) wrapped by
    :func:`grid_domain`; the targets are the land cells (``land_mask``, else the basins'
    footprint), ``attribute_source`` says which cells lie in a basin (1) and which were
    inverse-distance weighted (2).

    Returns
    -------
    Domain
        Kind ``"grid"``; inputs: the GeoPackage's sha256 and the store's id.

    Raises
    ------
    InputFormatError
        No cell of the grid lies in the basins' footprint (without ``land_mask``), or as
        :func:`grid_domain`.
    """
    ds = camels_grid_attributes(lat, lon, basins_store, gpkg, land_mask, names, idw_neighbours, idw_power,
                                footprint_buffer=footprint_buffer, footprint_ratio=footprint_ratio)
    src = ds["attribute_source"].values
    n_in, n_idw = int((src == SOURCE_BASIN).sum()), int((src == SOURCE_IDW).sum())
    step = np.diff(np.asarray(lon, dtype=np.float64))
    res = f" at {step[0]:g} degree" if step.size and np.allclose(step, step[0]) else ""
    land = "land mask given" if land_mask is not None else "land approximated by the basins' footprint"
    if land_mask is None and not np.any(ds["land_mask"].values):
        raise InputFormatError(f"attributes of grid {name}", None,
                               f"the grid has no land cells: none of its {len(lat)} x {len(lon)} cells (lat "
                               f"{float(np.min(lat)):g} to {float(np.max(lat)):g}, lon {float(np.min(lon)):g} to "
                               f"{float(np.max(lon)):g}) lies within the footprint of the CAMELS basins (their "
                               f"concave hull buffered by {footprint_buffer:g} degree), which stands for land when "
                               "no land mask is given; give the grid's land_mask or a grid over CONUS")
    return grid_domain(lat, lon, ds, ds["land_mask"].values, name,
                       description=(f"{len(lat)} x {len(lon)} grid{res}, {n_in + n_idw} land cells ({land}); CAMELS "
                                    f"attributes: {n_in} cells inside a basin, {n_idw} inverse-distance weighted from "
                                    f"the {idw_neighbours} nearest basins"))
