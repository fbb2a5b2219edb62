"""Pipeline step 1, *ingest*: CAMELS-US text files into a basins store (zarr v3).

The store has three groups:

``attributes``
    Every CAMELS attribute of all 671 gauges (``basin`` dimension), categorical ones as strings,
    with ``lat``, ``lon``, ``area`` and ``huc_02`` as coordinates and flags ``has_forcing`` and
    ``has_observations``.
``forcing``
    Daymet basin-mean forcing ``(basin, time)`` of every selected gauge that has a forcing file,
    plus Priestley-Taylor potential evapotranspiration ``pet`` (:mod:`lsegeo.ingest.pet`).
``observed``
    Observed streamflow ``qobs(basin, time)`` in mm day-1, on the same basins as ``forcing``;
    gauges without observations (withheld ones) are kept with all-NaN series and
    ``has_observations = False``.

The per-file work runs as dask tasks, one per zarr chunk of basins; each task parses its files,
checks them, and writes its own region of the store, so tasks never touch the same chunk.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import uuid
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import yaml

from lsegeo import provenance
from lsegeo.errors import DataNotFoundError, UnknownBasinError
from lsegeo.ingest.pet import priestley_taylor
from lsegeo.ingest.settings import IngestSettings
from lsegeo.io.camels import (
    FORCING_VARIABLES,
    CamelsLayout,
    check_gauge_id,
    read_attributes,
    read_forcing,
    read_streamflow,
)
from lsegeo.io.groups import write_group, write_region
from lsegeo.io.stores import atomic_store, stamp_provenance
from lsegeo.locations import work_dir
from lsegeo.parallel import ClusterSettings, cancel_and_drain, dask_client

__all__ = ["CFS_TO_M3S", "ingest_camels", "select_basins", "attributes_dataset", "default_store_path"]

CFS_TO_M3S = 0.0283168466
REFERENCES = ("Newman et al. (2015) doi:10.5194/hess-19-209-2015; Addor et al. (2017) "
              "doi:10.5194/hess-21-5293-2017; Priestley and Taylor (1972) "
              "doi:10.1175/1520-0493(1972)100<0081:OTAOSH>2.3.CO;2; Allen et al. (1998) FAO-56")
_COORD_RENAME = {"gauge_lat": "lat", "gauge_lon": "lon", "area_gages2": "area"}
_DEFAULTS = IngestSettings()

logger = logging.getLogger(__name__)


def default_store_path() -> Path:
    """The default basins store: ``<work dir>/camels_basins.zarr``."""
    return work_dir() / "camels_basins.zarr"


def select_basins(layout: CamelsLayout, attributes: pd.DataFrame,
                  requested: Sequence[str] | None) -> list[str]:
    """Return the gauges to ingest forcing for, checking every requested id.

    Raises
    ------
    UnknownBasinError
        A requested id is not a CAMELS gauge, or a forcing file's gauge is not in the attributes.
    DataNotFoundError
        A requested gauge has no forcing file; the message names the expected file.
    """
    have = layout.forcing_gauges
    stray = sorted(set(have) - set(attributes.index))
    if stray:
        raise UnknownBasinError(f"unknown gauge id {stray[0]!r}: forcing file {layout.forcing_path(stray[0])} "
                                f"has no row in {layout.attribute_table('name')}")
    if requested is None:
        return list(have)
    out = []
    for g in requested:
        g = check_gauge_id(g, "requested basin")
        if g not in attributes.index:
            raise UnknownBasinError(f"unknown gauge id {g!r}: not among the {len(attributes)} gauges of "
                                    f"{layout.attribute_table('name')}")
        if g not in have:
            raise DataNotFoundError(f"gauge {g} has no Daymet forcing: expected {layout.forcing_path(g)}")
        out.append(g)
    if len(set(out)) != len(out):
        dup = next(g for g in out if out.count(g) > 1)
        raise UnknownBasinError(f"gauge id {dup!r} is requested more than once")
    return sorted(out)


def _attribute_meta() -> dict[str, dict[str, Any]]:
    text = resources.files("lsegeo.data").joinpath("camels_attributes.yml").read_text()
    return {k: v for table in yaml.safe_load(text).values() for k, v in table.items()}


def attributes_dataset(attributes: pd.DataFrame, forcing_basins: Sequence[str],
                       observed_basins: Sequence[str]) -> xr.Dataset:
    """Turn the joined attribute table into the ``attributes`` group (CF attributes on every variable)."""
    meta = _attribute_meta()
    tables = attributes.attrs.get("table", {})
    basin = np.asarray(attributes.index, dtype=object)
    data_vars, coords = {}, {"basin": ("basin", basin, {"long_name": "CAMELS gauge id (USGS station number)",
                                                       "cf_role": "timeseries_id"})}
    for col in attributes.columns:
        values = attributes[col].to_numpy()
        values = values.astype(object) if values.dtype.kind in "OUT" or not np.issubdtype(values.dtype, np.number) \
            else values.astype("float64")
        info = meta.get(col, {})
        attrs = {"long_name": info.get("long_name", col), "camels_table": f"camels_{tables.get(col, '?')}.txt",
                 "coverage_content_type": "referenceInformation"}
        if values.dtype == object:
            attrs["missing_value_note"] = "empty string where CAMELS gives no value"
        elif info.get("units") is not None:
            attrs["units"] = info["units"]
        name = _COORD_RENAME.get(col, col)
        if col in _COORD_RENAME or col == "huc_02":
            if name == "lat":
                attrs.update(standard_name="latitude")
            elif name == "lon":
                attrs.update(standard_name="longitude")
            coords[name] = ("basin", values, attrs)
        else:
            data_vars[name] = ("basin", values, attrs)
    ds = xr.Dataset(data_vars, coords=coords)
    ds["has_forcing"] = ("basin", np.isin(basin, list(forcing_basins)),
                         {"long_name": "the basin has Daymet forcing in the forcing group"})
    ds["has_observations"] = ("basin", np.isin(basin, list(observed_basins)),
                              {"long_name": "observed streamflow is available (False: withheld or absent)"})
    return ds


def _template(basins: list[str], time: pd.DatetimeIndex, coords: xr.Dataset, chunk: int,
              variables: dict[str, tuple[str, dict]], per_basin: dict[str, tuple[str, dict]]) -> xr.Dataset:
    """A lazy, all-missing dataset with the final layout, to write metadata and coordinates."""
    nb, nt = len(basins), len(time)
    data = {}
    for name, (dtype, attrs) in variables.items():
        data[name] = (("basin", "time"), da.full((nb, nt), np.nan, dtype=dtype, chunks=(chunk, nt)), attrs)
    for name, (dtype, attrs) in per_basin.items():
        fill = False if dtype == "bool" else (0 if dtype.startswith("int") else np.nan)
        data[name] = ("basin", da.full(nb, fill, dtype=dtype, chunks=chunk), attrs)
    ds = xr.Dataset(data, coords={"basin": ("basin", np.asarray(basins, dtype=object), coords["basin"].attrs),
                                  "time": ("time", time, {"standard_name": "time", "long_name": "day (UTC date)"})})
    for c in ("lat", "lon", "area", "huc_02"):
        ds.coords[c] = ("basin", coords[c].sel(basin=basins).values, coords[c].attrs)
    return ds


FORCING_SCHEMA = {
    **{v: ("float32", {"units": u, "long_name": ln, "coverage_content_type": "physicalMeasurement",
                       "source_column": col}) for v, (col, u, ln) in FORCING_VARIABLES.items()},
    "pet": ("float32", {"units": "mm day-1", "long_name": "potential evapotranspiration (Priestley-Taylor, "
                        "alpha=1.26, FAO-56 net radiation)", "coverage_content_type": "modelResult"}),
}
FORCING_PER_BASIN = {
    "forcing_lat": ("float64", {"units": "degrees_north", "long_name": "latitude from line 1 of the forcing file"}),
    "forcing_elev": ("float64", {"units": "m", "long_name": "elevation from line 2 of the forcing file"}),
    "forcing_area": ("float64", {"units": "m2", "long_name": "basin area from line 3 of the forcing file "
                                 "(used to convert streamflow to mm day-1)"}),
}
OBSERVED_SCHEMA = {
    "qobs": ("float32", {"units": "mm day-1",
                         "long_name": "observed daily streamflow (USGS) as a depth over the basin",
                         "comment": "cfs * 0.0283168466 * 86400 / forcing_area * 1000; -999 and absent dates are NaN",
                         "coverage_content_type": "physicalMeasurement"}),
}
OBSERVED_PER_BASIN = {
    "has_observations": ("bool", {"long_name": "observed streamflow is available "
                                  "(False: withheld or absent; qobs is all NaN)"}),
    "n_observed_days": ("int32", {"long_name": "number of days with an observed value", "units": "1"}),
}


def _ingest_chunk(root: str, store: str, basins: list[str], offset: int, time: pd.DatetimeIndex,
                  qcfs: pd.DataFrame) -> dict[str, Any]:
    """Parse, check and write the forcing and observations of one chunk of basins (a dask task)."""
    layout = CamelsLayout(Path(root))
    nb, nt = len(basins), len(time)
    out = {v: np.full((nb, nt), np.nan, dtype="float32") for v in FORCING_SCHEMA}
    head = {v: np.full(nb, np.nan) for v in FORCING_PER_BASIN}
    qobs = np.full((nb, nt), np.nan, dtype="float32")
    hashes = {}
    doy = time.day_of_year.to_numpy()
    for i, g in enumerate(basins):
        path = layout.forcing_path(g)
        f = read_forcing(path, g)
        frame = f.data.reindex(time)
        for v in FORCING_VARIABLES:
            out[v][i] = frame[v].to_numpy(dtype="float32")
        out["pet"][i] = priestley_taylor(frame["tmax"], frame["tmin"], frame["srad"], frame["dayl"],
                                         frame["vp"], doy, f.lat, f.elev)
        head["forcing_lat"][i], head["forcing_elev"][i], head["forcing_area"][i] = f.lat, f.elev, f.area_m2
        if g in qcfs.columns:
            q = qcfs[g].reindex(time).to_numpy(dtype="float64")
            qobs[i] = q * CFS_TO_M3S * 86400.0 / f.area_m2 * 1000.0
        hashes[f"forcing/daymet/{path.name}"] = provenance.sha256_file(path)
    region = {"basin": slice(offset, offset + nb)}
    forcing = xr.Dataset({v: (("basin", "time"), a) for v, a in out.items()}
                         | {v: ("basin", a) for v, a in head.items()})
    write_region(forcing, store, "forcing", region)
    counts = np.isfinite(qobs).sum(axis=1).astype("int32")
    observed = xr.Dataset({"qobs": (("basin", "time"), qobs), "has_observations": ("basin", counts > 0),
                           "n_observed_days": ("basin", counts)})
    write_region(observed, store, "observed", region)
    return {"hashes": hashes, "n": nb, "observed_days": int(counts.sum())}


def ingest_camels(
    data_dir: str | Path | None = None,
    store: str | Path | None = None,
    basins: Sequence[str] | None = None,
    start: str | dt.date = _DEFAULTS.start,
    end: str | dt.date = _DEFAULTS.end,
    chunk_basins: int = _DEFAULTS.chunk_basins,
    overwrite: bool = False,
    cluster: ClusterSettings | None = None,
    client=None,
    progress: bool = True,
    call: str | None = None,
) -> Path:
    """Ingest CAMELS-US into a basins store (zarr v3), in parallel on dask.

    Parameters
    ----------
    data_dir : path-like, optional
        Directory holding ``camels_us`` (default: see :mod:`lsegeo.locations`).
    store : path-like, optional
        Output store (default ``<work dir>/camels_basins.zarr``).
    basins : sequence of str, optional
        Gauge ids to ingest forcing and observations for; default every gauge with a forcing file.
        Attributes are always ingested for all gauges.
    start, end : str or date
        First and last day of the period (inclusive); days outside a file's records are NaN.
    chunk_basins : int
        Basins per zarr chunk (and per dask task); whole time series in each chunk.
    overwrite : bool
        Replace an existing store.
    cluster : ClusterSettings, optional
        Cluster to start when no ``client`` is given (:func:`lsegeo.parallel.dask_client`;
        default a local cluster); a ``cluster`` configuration section works too.
    client : distributed.Client, optional
        Run on this client instead of starting a cluster.
    progress : bool
        Show a progress bar on standard error.
    call : str, optional
        The command that ran the ingest, for the ``history`` attribute.

    Returns
    -------
    pathlib.Path
        The store. It exists only if every file was read and written; otherwise nothing is left
        at the target path.

    Raises
    ------
    DataNotFoundError
        No CAMELS-US directory, a missing file, or a requested gauge without forcing.
    UnknownBasinError
        A requested id is not a CAMELS gauge.
    InputFormatError
        A malformed source file (the message names the file and line).
    StoreError
        ``store`` exists and ``overwrite`` is false.
    ValueError
        The period is empty.

    Notes
    -----
    The configuration recorded with the store (``lsegeo_config``, hashed into
    ``lsegeo_config_sha256``) holds no absolute path (:func:`lsegeo.provenance.portable_config`),
    so the same ingest has the same digest on every machine; the inputs are identified by the
    sha256 of each source file.
    """
    layout = CamelsLayout.find(data_dir)
    target = Path(store) if store is not None else default_store_path()
    time = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D", name="time")
    if len(time) == 0:
        raise ValueError(f"the period {start} to {end} is empty")
    attributes = read_attributes(layout)
    selected = select_basins(layout, attributes, basins)
    qcfs = read_streamflow(layout)
    no_forcing = sorted(set(qcfs.columns) - set(layout.forcing_gauges))
    with_obs = [g for g in selected if g in qcfs.columns]
    config = {"data_dir": str(layout.root.parent), "store": str(target), "basins": list(basins) if basins else "all",
              "start": str(time[0].date()), "end": str(time[-1].date()), "chunk_basins": chunk_basins}
    call = call or f"lsegeo.ingest_camels({json.dumps(config)})"
    # the target may be an older store about to be replaced: its path is recorded, never its identity
    config = {**provenance.portable_config({k: v for k, v in config.items() if k != "store"}),
              "store": provenance.portable_path(target)}
    inputs = {f"attributes/camels_{k}.txt": provenance.sha256_file(layout.attribute_table(k))
              for k in ("topo", "name", "clim", "hydro", "soil", "vege", "geol")}
    inputs[f"streamflow/{layout.streamflow_table.name}"] = provenance.sha256_file(layout.streamflow_table)

    with atomic_store(target, overwrite=overwrite) as tmp:
        attrs_ds = attributes_dataset(attributes, selected, with_obs)
        attrs_ds.attrs = {"title": "CAMELS-US catchment attributes", "source_note": (
            "camels_hydro signatures are NaN for gauges whose streamflow is withheld")}
        write_group(attrs_ds, tmp, "attributes", mode="w")
        coords = attrs_ds[["lat", "lon", "area", "huc_02"]]
        forcing_t = _template(selected, time, coords, chunk_basins, FORCING_SCHEMA, FORCING_PER_BASIN)
        forcing_t.attrs = {"title": "CAMELS-US Daymet basin-mean forcing and potential evapotranspiration"}
        write_group(forcing_t, tmp, "forcing", compute=False)
        observed_t = _template(selected, time, coords, chunk_basins, OBSERVED_SCHEMA, OBSERVED_PER_BASIN)
        observed_t.attrs = {"title": "CAMELS-US observed daily streamflow (USGS, v1.2)",
                            "streamflow_without_forcing": ", ".join(no_forcing)}
        write_group(observed_t, tmp, "observed", compute=False)

        chunks = [(selected[i:i + chunk_basins], i) for i in range(0, len(selected), chunk_basins)]
        with dask_client(cluster, client) as c:
            results = _run_chunks(c, str(layout.root), str(tmp), chunks, time, qcfs, progress)
        for r in results:
            inputs.update(r["hashes"])

        attrs = provenance.product_attrs(
            title="lsegeo basins store: CAMELS-US attributes, Daymet forcing, observed streamflow",
            summary=(f"{len(attributes)} CAMELS-US gauges: attributes of all; Daymet forcing, "
                     f"Priestley-Taylor PET and observed streamflow (mm/day) for {len(selected)} basins, "
                     f"{time[0].date()} to {time[-1].date()}; {len(with_obs)} basins have observed streamflow."),
            step="ingest camels", call=call, config=config, inputs=inputs, references=REFERENCES,
            extra={"license": "CAMELS data: CC-BY-4.0 (cite Newman et al. 2015 and Addor et al. 2017)",
                   "time_coverage_start": str(time[0].date()), "time_coverage_end": str(time[-1].date()),
                   "geospatial_lat_min": float(np.nanmin(coords["lat"])),
                   "geospatial_lat_max": float(np.nanmax(coords["lat"])),
                   "geospatial_lon_min": float(np.nanmin(coords["lon"])),
                   "geospatial_lon_max": float(np.nanmax(coords["lon"])),
                   "lsegeo_store_kind": "basins"})
        stamp_provenance(tmp, attrs, inputs, str(target), groups=True)  # every group keeps its own title
    logger.info("ingested %d basins (%d with observed streamflow), %s to %s, into %s",
                len(selected), len(with_obs), time[0].date(), time[-1].date(), target)
    return target


def _run_chunks(client, root: str, store: str, chunks, time, qcfs, progress: bool) -> list[dict]:
    from distributed import as_completed
    from tqdm.auto import tqdm

    run = uuid.uuid4().hex[:8]  # keys unique to this run: a client may still know an earlier run's keys
    futures = []
    for names, offset in chunks:
        cols = [g for g in names if g in qcfs.columns]
        futures.append(client.submit(_ingest_chunk, root, store, names, offset, time, qcfs[cols],
                                     pure=False, retries=1, key=f"ingest-{run}-chunk-{offset}"))
    total = sum(len(n) for n, _ in chunks)
    results = []
    with tqdm(total=total, unit="basin", desc="ingest", disable=not progress, file=sys.stderr) as bar:
        try:
            for fut in as_completed(futures):
                r = fut.result()
                results.append(r)
                bar.update(r["n"])
        except BaseException:
            cancel_and_drain(client, futures, f"ingest-{run}-")  # nothing writes into the store after this
            raise
    return results
