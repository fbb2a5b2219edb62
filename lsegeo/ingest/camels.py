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
    ``has_observations = False``. The depth is computed with ``area_gages2`` of
    ``camels_topo.txt``, the area CAMELS' own signatures (``q_mean``, ``runoff_ratio``; Addor et
    al. 2017) use; the two other area estimates (line 3 of the forcing file,
    ``area_geospa_fabric``) are stored beside it, and basins where they disagree by more than
    ``area_tolerance`` are listed in the ingest report.

What ingest checks, refuses, masks or repairs is listed in ``docs/ingest_checks.md``; the counts
of one ingest (the *ingest report*, :func:`ingest_report`) are stored as the JSON attribute
``lsegeo_ingest_checks`` of every group.

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
from lsegeo.errors import DataNotFoundError, InputFormatError, StoreError, UnknownBasinError
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
from lsegeo.io.groups import group_attrs, write_group, write_region
from lsegeo.io.stores import atomic_store, stamp_provenance
from lsegeo.io.urls import location
from lsegeo.locations import work_dir
from lsegeo.parallel import ClusterSettings, cancel_and_drain, dask_client, submit_task, task_result

__all__ = ["CFS_TO_M3S", "ingest_camels", "ingest_report", "select_basins", "attributes_dataset",
           "default_store_path", "check_areas", "area_disagreement"]

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


def check_areas(layout: CamelsLayout, attributes: pd.DataFrame, basins: Sequence[str]) -> np.ndarray:
    """Return ``area_gages2`` [km2] of ``basins``, checking that each is a positive number.

    ``area_gages2`` is the authoritative basin area: it converts observed streamflow to a depth,
    as in CAMELS' own signatures (Addor et al. 2017).

    Raises
    ------
    InputFormatError
        A basin's ``area_gages2`` is missing, not positive or not finite; the message names
        ``camels_topo.txt``, its line, the gauge and the value.
    """
    area = attributes.loc[list(basins), "area_gages2"].to_numpy(dtype="float64")
    bad = np.flatnonzero(~(np.isfinite(area) & (area > 0)))
    if bad.size:
        g = list(basins)[int(bad[0])]
        line = attributes.attrs.get("line", {}).get("topo", {}).get(g)
        raise InputFormatError(
            str(layout.attribute_table("topo")), line,
            f"gauge {g} has area_gages2 = {area[bad[0]]:g}: expected a positive area in km2, which converts its "
            f"streamflow from cfs to mm/day ({bad.size} gauge(s) to ingest lack one)")
    return area


def area_disagreement(area_gages2: np.ndarray, area_forcing: np.ndarray, area_geospa: np.ndarray) -> np.ndarray:
    """Largest relative difference of the two other area estimates from ``area_gages2``.

    Parameters
    ----------
    area_gages2, area_forcing, area_geospa : array of float
        Basin areas [km2]: ``area_gages2`` and ``area_geospa_fabric`` of ``camels_topo.txt`` and
        the area on line 3 of the Daymet forcing file.

    Returns
    -------
    numpy.ndarray
        ``max(|area_forcing / area_gages2 - 1|, |area_geospa / area_gages2 - 1|)`` [1]; a missing
        estimate is left out (NaN when both are).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(np.stack([area_forcing, area_geospa]) / area_gages2 - 1.0)
    out = np.full(rel.shape[1], np.nan)
    ok = np.isfinite(rel).any(axis=0)
    out[ok] = np.nanmax(rel[:, ok], axis=0)
    return out


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
                                 "(not used to convert streamflow: see the observed group)"}),
    "n_tmin_gt_tmax": ("int32", {"units": "1", "long_name": "days on which the file's tmin exceeded its tmax; "
                                 "the two values were exchanged (rule tmin_gt_tmax, docs/ingest_checks.md)"}),
}
OBSERVED_SCHEMA = {
    "qobs": ("float32", {"units": "mm day-1",
                         "long_name": "observed daily streamflow (USGS) as a depth over the basin",
                         "comment": "cfs * 0.0283168466 * 86400 / (area * 1e6) * 1000 with area = area_gages2 "
                                    "[km2] of camels_topo.txt (as CAMELS' q_mean, Addor et al. 2017); -999, "
                                    "empty cells and dates outside the table are NaN",
                         "coverage_content_type": "physicalMeasurement"}),
}
OBSERVED_PER_BASIN = {
    "has_observations": ("bool", {"long_name": "observed streamflow is available "
                                  "(False: withheld or absent; qobs is all NaN)"}),
    "n_observed_days": ("int32", {"long_name": "number of days with an observed value", "units": "1"}),
    "forcing_area": ("float64", {"units": "m2", "long_name": "basin area from line 3 of the forcing file "
                                 "(recorded, not used: qobs is converted with area_gages2)"}),
    "area_rel_diff": ("float64", {"units": "1", "long_name": "largest relative difference of forcing_area and "
                                  "area_geospa_fabric from area_gages2"}),
}


def _ingest_chunk(root: str, store: str, basins: list[str], offset: int, time: pd.DatetimeIndex,
                  qcfs: pd.DataFrame, area_km2: np.ndarray, geospa_km2: np.ndarray) -> dict[str, Any]:
    """Parse, check and write the forcing and observations of one chunk of basins (a dask task).

    ``area_km2`` (``area_gages2``) converts streamflow; ``geospa_km2`` is only compared.
    """
    layout = CamelsLayout(Path(root))
    nb, nt = len(basins), len(time)
    out = {v: np.full((nb, nt), np.nan, dtype="float32") for v in FORCING_SCHEMA}
    head = {v: np.full(nb, np.nan) for v in FORCING_PER_BASIN if v != "n_tmin_gt_tmax"}
    inverted = np.zeros(nb, dtype="int32")
    outside = np.zeros(nb, dtype="int64")
    qobs = np.full((nb, nt), np.nan, dtype="float32")
    hashes = {}
    doy = time.day_of_year.to_numpy()
    for i, g in enumerate(basins):
        path = layout.forcing_path(g)
        f = read_forcing(path, g)
        frame = f.data.reindex(time)
        outside[i] = int(frame["prcp"].isna().sum())  # days of the period the file does not cover
        swap = (frame["tmin"] > frame["tmax"]).to_numpy()
        if swap.any():  # rule tmin_gt_tmax: exchange them (the daily mean, and so PET and HBV, are unchanged)
            hi = np.maximum(frame["tmax"], frame["tmin"])
            frame["tmin"] = np.minimum(frame["tmax"], frame["tmin"])
            frame["tmax"] = hi
            inverted[i] = int(swap.sum())
        for v in FORCING_VARIABLES:
            out[v][i] = frame[v].to_numpy(dtype="float32")
        out["pet"][i] = priestley_taylor(frame["tmax"], frame["tmin"], frame["srad"], frame["dayl"],
                                         frame["vp"], doy, f.lat, f.elev)
        head["forcing_lat"][i], head["forcing_elev"][i], head["forcing_area"][i] = f.lat, f.elev, f.area_m2
        if g in qcfs.columns:
            q = qcfs[g].reindex(time).to_numpy(dtype="float64")
            qobs[i] = q * CFS_TO_M3S * 86400.0 / (area_km2[i] * 1e6) * 1000.0
        hashes[f"forcing/daymet/{path.name}"] = provenance.sha256_file(path)
    region = {"basin": slice(offset, offset + nb)}
    forcing = xr.Dataset({v: (("basin", "time"), a) for v, a in out.items()}
                         | {v: ("basin", a) for v, a in head.items()} | {"n_tmin_gt_tmax": ("basin", inverted)})
    write_region(forcing, store, "forcing", region)
    counts = np.isfinite(qobs).sum(axis=1).astype("int32")
    rel = area_disagreement(area_km2, head["forcing_area"] / 1e6, geospa_km2)
    observed = xr.Dataset({"qobs": (("basin", "time"), qobs), "has_observations": ("basin", counts > 0),
                           "n_observed_days": ("basin", counts), "forcing_area": ("basin", head["forcing_area"]),
                           "area_rel_diff": ("basin", rel)})
    write_region(observed, store, "observed", region)
    return {"hashes": hashes, "n": nb, "observed_days": int(counts.sum()),
            "forcing_area_km2": dict(zip(basins, (head["forcing_area"] / 1e6).tolist(), strict=True)),
            "tmin_gt_tmax": {g: int(n) for g, n in zip(basins, inverted, strict=True) if n},
            "forcing_outside_file": int(outside.sum())}


def ingest_camels(
    data_dir: str | Path | None = None,
    store: str | Path | None = None,
    basins: Sequence[str] | None = None,
    start: str | dt.date = _DEFAULTS.start,
    end: str | dt.date = _DEFAULTS.end,
    chunk_basins: int = _DEFAULTS.chunk_basins,
    area_tolerance: float = _DEFAULTS.area_tolerance,
    overwrite: bool = False,
    cluster: ClusterSettings | None = None,
    client=None,
    progress: bool = True,
    call: str | None = None,
) -> Path | str:
    """Ingest CAMELS-US into a basins store (zarr v3), in parallel on dask.

    Parameters
    ----------
    data_dir : path-like, optional
        Directory holding ``camels_us`` (default: see :mod:`lsegeo.locations`).
    store : path-like or str, optional
        Output store (default ``<work dir>/camels_basins.zarr``); a URL (``s3://...``) is built
        in a local folder when the workers are started here on a local cluster, else in a hidden
        staging prefix beside it that the tasks write to (a ``client`` or another cluster kind),
        and published with its root metadata last (:func:`lsegeo.io.publish.staged_store`).
    basins : sequence of str, optional
        Gauge ids to ingest forcing and observations for; default every gauge with a forcing file.
        Attributes are always ingested for all gauges.
    start, end : str or date
        First and last day of the period (inclusive); days outside a file's records are NaN.
    chunk_basins : int
        Basins per zarr chunk (and per dask task); whole time series in each chunk.
    area_tolerance : float
        Relative difference [1] above which the forcing file's area or ``area_geospa_fabric``
        is reported as disagreeing with ``area_gages2`` (which converts streamflow either way).
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
    pathlib.Path or str
        The store (the URL text for a URL). It exists only if every file was read and written;
        otherwise nothing is left at the target.

    Raises
    ------
    DataNotFoundError
        No CAMELS-US directory, a missing file, or a requested gauge without forcing.
    UnknownBasinError
        A requested id is not a CAMELS gauge.
    InputFormatError
        A malformed source file (the message names the file and line), a physically impossible
        forcing value (file, line, variable, value), a streamflow row with too few cells, a gauge
        of ``camels_name.txt`` missing from another attribute table, or a basin to ingest without
        a positive ``area_gages2``. The rules are in ``docs/ingest_checks.md``.
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

    What was masked or repaired, rule by rule, and the basins whose area estimates disagree form
    the ingest report: logged, stored as the attribute ``lsegeo_ingest_checks`` of every group,
    and returned by :func:`ingest_report`.
    """
    layout = CamelsLayout.find(data_dir)
    target = location(store) if store is not None else default_store_path()
    time = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D", name="time")
    if len(time) == 0:
        raise ValueError(f"the period {start} to {end} is empty")
    attributes = read_attributes(layout)
    selected = select_basins(layout, attributes, basins)
    area_km2 = check_areas(layout, attributes, selected)
    geospa_km2 = attributes.loc[selected, "area_geospa_fabric"].to_numpy(dtype="float64")
    qcfs, qcode = read_streamflow(layout, with_codes=True)
    no_forcing = sorted(set(qcfs.columns) - set(layout.forcing_gauges))
    with_obs = [g for g in selected if g in qcfs.columns]
    in_window = qcfs.index[(qcfs.index >= time[0]) & (qcfs.index <= time[-1])]
    n_code = int(qcode.loc[in_window, with_obs].to_numpy().sum())
    flow_counts = {"streamflow_missing_code": n_code,
                   "streamflow_empty_cell": int(qcfs.loc[in_window, with_obs].isna().to_numpy().sum()) - n_code,
                   "streamflow_outside_table": (len(time) - len(in_window)) * len(with_obs)}
    config = {"data_dir": str(layout.root.parent), "store": str(target), "basins": list(basins) if basins else "all",
              "start": str(time[0].date()), "end": str(time[-1].date()), "chunk_basins": chunk_basins}
    call = call or f"lsegeo.ingest_camels({json.dumps(config)})"
    # the target may be an older store about to be replaced: its path is recorded, never its identity
    config = {**provenance.portable_config({k: v for k, v in config.items() if k != "store"}),
              "store": provenance.portable_path(target)}
    inputs = {f"attributes/camels_{k}.txt": provenance.sha256_file(layout.attribute_table(k))
              for k in ("topo", "name", "clim", "hydro", "soil", "vege", "geol")}
    inputs[f"streamflow/{layout.streamflow_table.name}"] = provenance.sha256_file(layout.streamflow_table)

    # a URL target is built in a local folder when the workers are local processes started here, else in a
    # staging prefix beside it that any worker reaches; either is published with its root metadata last
    local_workers = client is None and (cluster is None or cluster.kind == "local")
    with atomic_store(target, overwrite=overwrite, staging="local" if local_workers else "beside") as tmp:
        attrs_ds = attributes_dataset(attributes, selected, with_obs)
        attrs_ds.attrs = {"title": "CAMELS-US catchment attributes", "source_note": (
            "camels_hydro signatures are NaN for gauges whose streamflow is withheld")}
        write_group(attrs_ds, tmp, "attributes", mode="w")
        coords = attrs_ds[["lat", "lon", "area", "huc_02"]]
        forcing_t = _template(selected, time, coords, chunk_basins, FORCING_SCHEMA, FORCING_PER_BASIN)
        forcing_t.attrs = {"title": "CAMELS-US Daymet basin-mean forcing and potential evapotranspiration"}
        write_group(forcing_t, tmp, "forcing", compute=False)
        observed_t = _template(selected, time, coords, chunk_basins, OBSERVED_SCHEMA, OBSERVED_PER_BASIN)
        observed_t["area"].attrs["comment"] = ("area_gages2 of camels_topo.txt: converts qobs to mm day-1 "
                                               "(authoritative, as in CAMELS' q_mean; Addor et al. 2017)")
        observed_t.coords["area_geospa_fabric"] = ("basin", geospa_km2, {
            "units": "km2", "long_name": "catchment area (geospatial fabric estimate), camels_topo.txt; "
            "recorded, not used to convert qobs"})
        observed_t.attrs = {"title": "CAMELS-US observed daily streamflow (USGS, v1.2)",
                            "streamflow_without_forcing": ", ".join(no_forcing)}
        write_group(observed_t, tmp, "observed", compute=False)

        chunks = [(selected[i:i + chunk_basins], i) for i in range(0, len(selected), chunk_basins)]
        with dask_client(cluster, client) as c:
            results = _run_chunks(c, str(layout.root), str(tmp), chunks, time, qcfs, progress,
                                  areas=(area_km2, geospa_km2))
        for r in results:
            inputs.update(r["hashes"])
        report = _report(selected, with_obs, area_km2, geospa_km2, results, flow_counts, area_tolerance)

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
                   "lsegeo_store_kind": "basins",
                   "lsegeo_ingest_checks": json.dumps(report)})
        stamp_provenance(tmp, attrs, inputs, str(target), groups=True)  # every group keeps its own title
    logger.info("ingested %d basins (%d with observed streamflow), %s to %s, into %s",
                len(selected), len(with_obs), time[0].date(), time[-1].date(), target)
    _log_report(report)
    return target


#: the ingest rules and what each does; their thresholds and sources are in docs/ingest_checks.md
RULES = {
    "streamflow_missing_code": "masked: -999 in the streamflow table (QC flag M) becomes NaN",
    "streamflow_empty_cell": "masked: an empty cell (the date is not in the USGS record) becomes NaN",
    "streamflow_outside_table": "masked: days of the period outside the table's dates are NaN",
    "forcing_outside_file": "masked: days of the period outside a forcing file's dates are NaN",
    "forcing_tmin_gt_tmax": "repaired: tmin > tmax on a day, the two are exchanged (daily mean unchanged)",
    "forcing_out_of_range": "refused: a forcing value outside its physical range or a missing-value code",
    "streamflow_negative": "refused: a negative flow other than the code -999",
    "streamflow_row_cells": "refused: a streamflow row with more or fewer cells than the header",
    "attributes_missing_gauge": "refused: a gauge of camels_name.txt without a row in another table",
    "area_gages2_missing": "refused: a basin to ingest without a positive area_gages2",
}


def _report(selected, with_obs, area_km2, geospa_km2, results, flow_counts, tolerance) -> dict[str, Any]:
    """Assemble the ingest report (see :func:`ingest_report`) from the chunk results."""
    forcing_km2 = {}
    inverted: dict[str, int] = {}
    for r in results:
        forcing_km2.update(r["forcing_area_km2"])
        inverted.update(r["tmin_gt_tmax"])
    fkm2 = np.array([forcing_km2[g] for g in selected])
    rel = area_disagreement(area_km2, fkm2, geospa_km2)
    has_obs = set(with_obs)
    listed = [{"basin": g, "area_gages2_km2": round(float(a), 2), "area_forcing_km2": round(float(f), 2),
               "area_geospa_fabric_km2": round(float(s), 2), "rel_diff": round(float(d), 4),
               "has_observations": g in has_obs}
              for g, a, f, s, d in zip(selected, area_km2, fkm2, geospa_km2, rel, strict=True) if d > tolerance]
    counts = dict.fromkeys(RULES, 0) | flow_counts
    counts["forcing_tmin_gt_tmax"] = sum(inverted.values())
    counts["forcing_outside_file"] = sum(r["forcing_outside_file"] for r in results)
    return {
        "rules": {k: {"action": RULES[k].split(":")[0], "what": RULES[k].split(": ", 1)[1], "count": counts[k]}
                  for k in RULES},
        "tmin_gt_tmax_basins": dict(sorted(inverted.items())),
        "area": {"converts_streamflow": "area_gages2",
                 "source": "camels_topo.txt; the area of CAMELS' q_mean and runoff_ratio (Addor et al. 2017)",
                 "compared": ["forcing file line 3", "area_geospa_fabric"], "tolerance": tolerance,
                 "n_basins": len(selected), "n_disagree": len(listed), "disagree": listed},
        "doc": "docs/ingest_checks.md",
    }


def _log_report(report: dict[str, Any]) -> None:
    for name, rule in report["rules"].items():
        if rule["count"]:
            logger.info("ingest check %s (%s): %d", name, rule["action"], rule["count"])
    area = report["area"]
    if area["n_disagree"]:
        worst = sorted(area["disagree"], key=lambda d: -d["rel_diff"])
        more = f" and {len(worst) - 10} more" if len(worst) > 10 else ""
        logger.warning("%d of %d basins have a forcing-file or geospatial-fabric area more than %.0f%% from "
                       "area_gages2 (which converts streamflow), the most: %s%s (all in the store's ingest report)",
                       area["n_disagree"], area["n_basins"], 100 * area["tolerance"],
                       ", ".join(d["basin"] for d in worst[:10]), more)


def ingest_report(store: str | Path) -> dict[str, Any]:
    """The ingest report of a basins store: what each ingest rule masked, repaired or refused.

    Returns
    -------
    dict
        ``rules``: rule name -> ``{"action": "masked" | "repaired" | "refused", "what", "count"}``
        (a refusing rule's count is 0 in every finished store: it stops the ingest);
        ``tmin_gt_tmax_basins``: gauge -> days repaired; ``area``: which area converts
        streamflow, the tolerance and ``disagree``, one entry per basin whose forcing-file or
        ``area_geospa_fabric`` area differs from ``area_gages2`` by more than the tolerance,
        with the three areas [km2] and the largest relative difference.

    Raises
    ------
    StoreError
        ``store`` is not a basins store written by this version of the ingest.
    """
    text = group_attrs(store, "observed").get("lsegeo_ingest_checks")
    if text is None:
        raise StoreError(f"{store}: the observed group has no ingest report (lsegeo_ingest_checks); "
                         "it was written by an older lsegeo: ingest again")
    return json.loads(text)


def _run_chunks(client, root: str, store: str, chunks, time, qcfs, progress: bool,
                areas: tuple[np.ndarray, np.ndarray]) -> list[dict]:
    from distributed import as_completed
    from tqdm.auto import tqdm

    run = uuid.uuid4().hex[:8]  # keys unique to this run: a client may still know an earlier run's keys
    futures = []
    for names, offset in chunks:
        cols = [g for g in names if g in qcfs.columns]
        part = slice(offset, offset + len(names))
        # not retried: an input error is reported once
        futures.append(submit_task(client, _ingest_chunk, root, store, names, offset, time, qcfs[cols],
                                   areas[0][part], areas[1][part], key=f"ingest-{run}-chunk-{offset}"))
    total = sum(len(n) for n, _ in chunks)
    results = []
    with tqdm(total=total, unit="basin", desc="ingest", disable=not progress, file=sys.stderr) as bar:
        try:
            for fut in as_completed(futures):
                r = task_result(fut)
                results.append(r)
                bar.update(r["n"])
        except BaseException:
            cancel_and_drain(client, futures, f"ingest-{run}-")  # nothing writes into the store after this
            raise
    return results
