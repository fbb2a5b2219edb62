"""CF-1.11 and ACDD-1.3 metadata of a regionalized parameter product.

A regionalized result (one :class:`xarray.Dataset` in the layout of ``docs/products.md``: a
``basin`` dimension for basin and table domains, 1-D ascending ``lat``/``lon`` for grids, a
``sample`` dimension for the K parameter sets) gets its variable metadata from
:func:`annotate` and its global attributes from :func:`global_attrs`.

Conventions followed (and checked in the tests with the IOOS compliance-checker 6.1.0):

* CF-1.11 (https://cfconventions.org): ``units`` (UDUNITS; ``"1"`` for dimensionless),
  ``long_name``, ``valid_range``, ``flag_values``/``flag_meanings`` (section 3.5), a
  ``latitude_longitude`` grid mapping (section 5.6, Appendix F) named by ``grid_mapping`` on every
  spatial data variable; basins as sites with auxiliary ``lat``/``lon`` coordinates (section 5), see
  :data:`BASIN_FEATURE_TYPE`;
* ACDD-1.3 (https://wiki.esipfed.org/Attribute_Convention_for_Data_Discovery_1-3): per variable
  ``coverage_content_type``; global ``geospatial_*``, ``keywords``, ``license``, ... .

No CF standard name exists for a model parameter, a predicted skill score or a distance in
attribute space, so those variables carry a ``long_name`` only, as CF section 3.3 allows; ACDD's
per-variable ``standard_name`` recommendation cannot be met for them without inventing names
(which CF's checker rejects). ``docs/products.md`` lists what the checkers report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from lsegeo.design import ParameterSpace
from lsegeo.errors import InputFormatError

__all__ = ["CRS_NAME", "SAMPLE_SUFFIX", "SCORE_VARIABLES", "BASIN_FEATURE_TYPE", "STANDARD_NAME_VOCABULARY",
           "domain_kind", "parameter_names", "product_response", "annotate", "global_attrs", "wgs84_crs"]

#: the grid-mapping variable every spatial data variable names
CRS_NAME = "crs"
#: suffix of the K parameter sets of a parameter
SAMPLE_SUFFIX = "_samples"
#: the predicted-score layers: name -> what the value is (``{what}``: what the product predicts with)
SCORE_VARIABLES = {
    "score_predicted": "predicted {objective} of {what}, {period} period",
    "score_lower": "lower end of the {level} conformal interval of the predicted {objective} of {what}, "
                   "{period} period",
    "score_upper": "upper end of the {level} conformal interval of the predicted {objective} of {what}, "
                   "{period} period",
}
#: ``{level}`` of :data:`SCORE_VARIABLES` is the product's ``lsegeo_interval_confidence`` (default 0.9) in percent
DEFAULT_CONFIDENCE = 0.9
#: ``{what}`` of :data:`SCORE_VARIABLES` per ``lsegeo_response``
_PREDICTS_WITH = {"point": "the point estimate", "mean": "the mean simulated flow of the K samples"}
#: note on the parameter maps of a mean-response product
_MEAN_RESPONSE_COMMENT = ("this product predicts with the mean of the simulated flows of all K samples "
                          "(lsegeo_response = mean); sample 0 alone is one of them, not the prediction")
#: CF feature type of a basin (or table) domain: none. The values are one per site with no time axis;
#: ``featureType = "point"`` would need a ``cf_role = "point_id"`` instance variable, which CF does not
#: define (and compliance-checker 6.1.0's ``check_domain_variables`` fails on it), and ``"timeSeries"``
#: is refused because no variable has a time axis. The basin id carries ``cf_role = "timeseries_id"``,
#: the identifier of each fixed site, and ``lat``/``lon`` are auxiliary coordinates (CF section 5).
BASIN_FEATURE_TYPE = None
#: the standard names used (latitude, longitude, land_binary_mask) are in every version of the table
STANDARD_NAME_VOCABULARY = "CF Standard Name Table v93"
#: WGS 84 (EPSG:4326) as a CF grid mapping (CF Appendix F, ``latitude_longitude``)
_WGS84 = {"grid_mapping_name": "latitude_longitude", "semi_major_axis": 6378137.0,
          "inverse_flattening": 298.257223563, "longitude_of_prime_meridian": 0.0,
          "long_name": "coordinate reference system: WGS 84 (EPSG:4326)",
          "crs_wkt": ('GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,'
                      '298.257223563,LENGTHUNIT["metre",1]]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",'
                      '0.0174532925199433]],CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north,ORDER[1],'
                      'ANGLEUNIT["degree",0.0174532925199433]],AXIS["geodetic longitude (Lon)",east,ORDER[2],'
                      'ANGLEUNIT["degree",0.0174532925199433]],ID["EPSG",4326]]')}
#: flag variables: name -> (values, meanings, long_name)
_FLAGS = {
    "extrapolates": ((0, 1), "within_domain_of_applicability extrapolates",
                     "whether the target's attributes lie outside the training basins' domain of applicability"),
    "land_mask": ((0, 1), "not_land land", "land cells of the grid (1 = land)"),
    "attribute_source": ((0, 1, 2), "none basin_attributes inverse_distance_weighted",
                         "where the cell's attributes come from: the basin it lies in, or inverse-distance "
                         "weighting of nearby basins"),
}


def domain_kind(ds: xr.Dataset) -> str:
    """``"basins"`` (a ``basin`` dimension) or ``"grid"`` (``lat`` and ``lon`` dimensions).

    Raises
    ------
    InputFormatError
        The Dataset has neither layout.
    """
    if "basin" in ds.dims:
        return "basins"
    if "lat" in ds.dims and "lon" in ds.dims:
        return "grid"
    raise InputFormatError("<regionalized dataset>", None, f"has dimensions {dict(ds.sizes)}; a parameter "
                           "product has a 'basin' dimension (basin or table domains) or 'lat' and 'lon' (grids)")


def spatial_dims(ds: xr.Dataset) -> tuple[str, ...]:
    """The spatial dimensions: ``("basin",)`` or ``("lat", "lon")``."""
    return ("basin",) if domain_kind(ds) == "basins" else ("lat", "lon")


def parameter_names(ds: xr.Dataset, space: ParameterSpace) -> list[str]:
    """The parameters of ``space`` that ``ds`` holds, in the space's order.

    Raises
    ------
    InputFormatError
        ``ds`` holds none of them.
    """
    names = [n for n in space.names if n in ds.data_vars]
    if not names:
        raise InputFormatError("<regionalized dataset>", None, f"holds none of the parameters of space "
                               f"{space.name!r} ({', '.join(space.names)}); its variables are "
                               f"{', '.join(map(str, ds.data_vars))}")
    return names


def wgs84_crs() -> xr.DataArray:
    """The ``crs`` grid-mapping variable: a 0-d int32 with the WGS 84 ``latitude_longitude`` attributes."""
    return xr.DataArray(np.int32(0), attrs=dict(_WGS84))


def _objective_text(objective: str) -> tuple[str, str]:
    """(label, units) of an objective from the objective registry; the name itself when unknown."""
    from lsegeo.metrics.objectives import OBJECTIVES

    try:
        o = OBJECTIVES[objective]
    except KeyError:
        return objective, "1"
    label = {"kgeprime": "KGE'", "kge": "KGE", "nkgeprime": "normalised KGE'", "nse": "NSE"}.get(o.name, o.long_name)
    return label, o.units or "1"


def _check_bounds(ds: xr.Dataset, name: str, values: xr.DataArray, lower: float, upper: float) -> None:
    v = np.asarray(values.values, dtype=np.float64)
    bad = np.isfinite(v) & ((v < lower) | (v > upper))
    if bad.any():
        first = float(v[bad].flat[0])
        raise InputFormatError("<regionalized dataset>", None, f"variable {name}: {int(bad.sum())} value(s) outside "
                               f"the parameter's bounds [{lower}, {upper}] (e.g. {first!r})")


def product_response(ds: xr.Dataset, where: str = "<parameter product>") -> str:
    """How a product predicts: ``"point"`` (sample 0) or ``"mean"`` (the mean flow of all K samples).

    Read from its ``lsegeo_response`` attribute (absent: ``"point"``, as products written before
    the attribute existed).

    Raises
    ------
    InputFormatError
        Another value, or ``"mean"`` without the ``<name>_samples`` variables (naming ``where``).
    """
    response = str(ds.attrs.get("lsegeo_response", "point") or "point")
    if response not in _PREDICTS_WITH:
        raise InputFormatError(where, None, f"global attribute lsegeo_response {response!r} is not one of "
                                            f"{sorted(_PREDICTS_WITH)}")
    if response == "mean" and not any(str(v).endswith(SAMPLE_SUFFIX) for v in ds.data_vars):
        raise InputFormatError(where, None, "global attribute lsegeo_response is 'mean' but the product has no "
                                            "<name>_samples variables")
    return response


def annotate(ds: xr.Dataset, space: ParameterSpace, *, objective: str, period: str, model: str) -> xr.Dataset:
    """Add CF/ACDD variable metadata to a regionalized Dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        A regionalized result in the product layout (module docstring): ``<param>`` (S),
        ``<param>_samples`` (sample, S), ``score_predicted``/``score_lower``/``score_upper`` (S),
        ``applicability`` (S), ``extrapolates`` (S), for grids ``land_mask`` and
        ``attribute_source`` (lat, lon), optionally ``selected_member`` and ``donor_basin``.
    space : ParameterSpace
        Gives each parameter's ``units``, ``long_name`` (its description) and ``valid_range``.
    objective : str
        The objective the scores predict (a name of :data:`lsegeo.metrics.objectives.OBJECTIVES`).
    period : str
        The scoring period of the scores (``"calibration"``).
    model : str
        The model the parameters are for (``"hbv"``, ``"ctsm"``).

    Returns
    -------
    xarray.Dataset
        A copy with the attributes set (existing variable attributes are kept unless set here),
        a ``crs`` variable, ``grid_mapping="crs"`` on every spatial data variable and, for basin
        domains, ``coordinates="lat lon"`` and the basin coordinate's ``cf_role``.

    Raises
    ------
    InputFormatError
        The Dataset has neither layout, holds none of the space's parameters, a parameter has
        values outside its bounds, or holds a data variable this function does not know and that
        has no ``long_name`` and ``units`` of its own.
    """
    kind = domain_kind(ds)
    sdims = spatial_dims(ds)
    out = ds.copy()
    names = parameter_names(ds, space)
    label, score_units = _objective_text(objective)
    response = product_response(out)
    known: set[str] = set()
    for name in names:
        p = space[name]
        long_name = p.description or p.name
        units = p.units or "1"
        samples_text = (f"{long_name} (the K sampled parameter sets, whose mean simulated flow is the prediction)"
                        if response == "mean" else
                        f"{long_name} (the K sampled parameter sets; sample 0 is the point estimate)")
        for var, text in ((name, long_name), (name + SAMPLE_SUFFIX, samples_text)):
            if var not in out:
                continue
            _check_bounds(out, var, out[var], p.lower, p.upper)
            out[var] = out[var].astype(np.float64)
            out[var].attrs.update(units=units, long_name=text, coverage_content_type="modelResult",
                                  valid_range=np.array([p.lower, p.upper], dtype=np.float64),
                                  lsegeo_parameter=name, lsegeo_scale=p.scale, lsegeo_default=float(p.default),
                                  lsegeo_model=model)
            if response == "mean":
                out[var].attrs["comment"] = _MEAN_RESPONSE_COMMENT
            known.add(var)
    level = f"{100 * float(out.attrs.get('lsegeo_interval_confidence', DEFAULT_CONFIDENCE)):g}%"
    for var, template in SCORE_VARIABLES.items():
        if var in out:
            out[var] = out[var].astype(np.float64)
            out[var].attrs.update(units=score_units, long_name=template.format(objective=label, period=period,
                                                                              what=_PREDICTS_WITH[response],
                                                                              level=level),
                                  coverage_content_type="qualityInformation", lsegeo_objective=objective,
                                  lsegeo_period=period)
            known.add(var)
    if "applicability" in out:
        out["applicability"].attrs.update(
            units="1", coverage_content_type="qualityInformation",
            long_name="domain of applicability: distance in standardized attribute space to the training basins")
        known.add("applicability")
    for var, (values, meanings, long_name) in _FLAGS.items():
        if var in out:
            out[var] = out[var].astype(np.int8)
            out[var].attrs.update(flag_values=np.array(values, dtype=np.int8), flag_meanings=meanings,
                                  long_name=long_name, coverage_content_type="qualityInformation"
                                  if var == "extrapolates" else "auxiliaryInformation")
            if var == "land_mask":
                out[var].attrs["standard_name"] = "land_binary_mask"
            known.add(var)
    if "selected_member" in out:
        out["selected_member"].attrs.update(long_name="ensemble member chosen by lse-select (-1: a basin's "
                                                      "calibrated set, named in donor_basin, or no target)",
                                            coverage_content_type="auxiliaryInformation", units="1")
        known.add("selected_member")
    if "donor_basin" in out:
        out["donor_basin"].attrs.update(long_name="gauge id of the donor basin whose calibrated set was taken "
                                                  "(sample 0; empty where lse-select chose a design member)",
                                        coverage_content_type="auxiliaryInformation")
        known.add("donor_basin")
    if "donor_basin_samples" in out:
        out["donor_basin_samples"].attrs.update(long_name="gauge id of the donor basin of each sample",
                                                coverage_content_type="auxiliaryInformation")
        known.add("donor_basin_samples")
    unknown = [str(v) for v in out.data_vars if v not in known and v != CRS_NAME
               and not {"long_name", "units"} <= set(out[v].attrs)]
    if unknown:
        raise InputFormatError("<regionalized dataset>", None, f"variable(s) {', '.join(unknown)} are not part of "
                               "the product layout (parameters of the space, their _samples, score_*, "
                               "applicability, extrapolates, land_mask, attribute_source, selected_member, "
                               "donor_basin, donor_basin_samples) and have no long_name and units of their own")
    out[CRS_NAME] = wgs84_crs()
    for var in out.data_vars:
        if var != CRS_NAME and set(sdims) <= set(out[var].dims):
            out[var].attrs["grid_mapping"] = CRS_NAME
            if kind == "basins":
                out[var].attrs["coordinates"] = "lat lon"
    out = _coordinate_attrs(out, kind)
    return out


def _coordinate_attrs(out: xr.Dataset, kind: str) -> xr.Dataset:
    where = "(polygon centroid where known, else gauge)"
    lat_text = "cell-centre latitude" if kind == "grid" else f"basin latitude {where}"
    lon_text = "cell-centre longitude" if kind == "grid" else f"basin longitude {where}"
    out["lat"].attrs.update(standard_name="latitude", units="degrees_north", long_name=lat_text)
    out["lon"].attrs.update(standard_name="longitude", units="degrees_east", long_name=lon_text)
    if kind == "grid":
        out["lat"].attrs["axis"] = "Y"
        out["lon"].attrs["axis"] = "X"
    else:
        out["basin"].attrs.update(cf_role="timeseries_id", long_name="basin (gauge) id or table row id")
    if "sample" in out.coords:
        out["sample"].attrs.update(long_name="index of the sampled parameter set (0: the point estimate)",
                                   units="1")
    return out


def _resolution(values: np.ndarray) -> float | None:
    """The spacing of a regular axis (None when irregular or of one point)."""
    if values.size < 2:
        return None
    step = np.diff(values)
    if np.allclose(step, step[0], rtol=1e-6, atol=1e-9):
        return float(abs(step[0]))
    return None


def _bounds_wkt(lat_min: float, lat_max: float, lon_min: float, lon_max: float) -> str:
    """The bounding box in WKT, in EPSG:4326 axis order (latitude, longitude) as ACDD's example writes it."""
    if lat_min == lat_max and lon_min == lon_max:
        return f"POINT ({lat_min:g} {lon_min:g})"
    if lat_min == lat_max or lon_min == lon_max:
        return f"LINESTRING ({lat_min:g} {lon_min:g}, {lat_max:g} {lon_max:g})"
    ring = [(lat_min, lon_min), (lat_min, lon_max), (lat_max, lon_max), (lat_max, lon_min), (lat_min, lon_min)]
    return "POLYGON ((" + ", ".join(f"{a:g} {b:g}" for a, b in ring) + "))"


def _iso_duration(start: str, end: str) -> str:
    import datetime as dt

    days = (dt.date.fromisoformat(str(end)[:10]) - dt.date.fromisoformat(str(start)[:10])).days + 1
    return f"P{days}D"


def global_attrs(ds: xr.Dataset, attrs: Mapping[str, Any], inputs: Mapping[str, str], *,
                 time_coverage: tuple[str, str] | None = None) -> dict[str, Any]:
    """The global attributes of a parameter product.

    Parameters
    ----------
    ds : xarray.Dataset
        The annotated product; its own ``lsegeo_*`` attributes (method, objective, period,
        domain, emulator skill, cross-validation, model, CTSM version) are kept.
    attrs : mapping
        From :func:`lsegeo.provenance.product_attrs` (title, summary, history, id, hashes,
        configuration, software versions); they take precedence over ``ds.attrs``.
    inputs : mapping of str to str
        Input name -> sha256; recorded as ``lsegeo_inputs`` (JSON).
    time_coverage : (str, str), optional
        First and last day (ISO dates) of the streamflow period the parameters were fitted to;
        gives ``time_coverage_start/end/duration`` and the daily ``time_coverage_resolution``.

    Returns
    -------
    dict
        Strings and numbers only (valid in netCDF and zarr): the CF/ACDD set (``Conventions``,
        ``geospatial_*`` from the ``lat``/``lon`` coordinates, ``geospatial_bounds`` in WKT with
        ``geospatial_bounds_crs="EPSG:4326"``, ``keywords``, ``license``, ``cdm_data_type``,
        ``processing_level``, ``standard_name_vocabulary``,
        ``product_version``, ...).
    """
    kind = domain_kind(ds)
    lat = np.asarray(ds["lat"].values, dtype=np.float64)
    lon = np.asarray(ds["lon"].values, dtype=np.float64)
    lat_min, lat_max = float(np.nanmin(lat)), float(np.nanmax(lat))
    lon_min, lon_max = float(np.nanmin(lon)), float(np.nanmax(lon))
    out: dict[str, Any] = {k: v for k, v in ds.attrs.items()}
    out.update(attrs)
    model = str(out.get("lsegeo_model", ""))
    method = str(out.get("lsegeo_method", ""))
    version = str(out.get("lsegeo_version", ""))
    out.update({
        "Conventions": "CF-1.11, ACDD-1.3",
        "geospatial_lat_min": lat_min, "geospatial_lat_max": lat_max,
        "geospatial_lon_min": lon_min, "geospatial_lon_max": lon_max,
        "geospatial_lat_units": "degrees_north", "geospatial_lon_units": "degrees_east",
        "geospatial_bounds": _bounds_wkt(lat_min, lat_max, lon_min, lon_max),
        "geospatial_bounds_crs": "EPSG:4326",
        "standard_name_vocabulary": STANDARD_NAME_VOCABULARY,
        "cdm_data_type": "Grid" if kind == "grid" else "Point",
        "lsegeo_inputs": json.dumps(dict(sorted(inputs.items()))),
        "lsegeo_store_kind": "parameter_maps",
    })
    out.setdefault("keywords", ", ".join(k for k in (
        "hydrology", "land surface model", "model parameters", "parameter regionalization",
        "large-sample emulator", "streamflow", "CAMELS", model.upper() if model else "", method) if k))
    out.setdefault("processing_level", "model-derived: parameters regionalized from calibrated basins with "
                   f"lsegeo ({method or 'method recorded in lsegeo_method'})")
    out.setdefault("license", "lsegeo software: BSD-3-Clause. The parameters are derived from CAMELS (see "
                   "references) and follow the terms of the data they were derived from.")
    out.setdefault("product_version", version or "1")
    out.setdefault("project", "lsegeo parameter regionalization")
    out.setdefault("acknowledgement", "Built on the CAMELS data set (NCAR/UCAR; see references).")
    out.setdefault("comment", f"Parameters of the {model or 'model'} for every target of the domain "
                   f"({kind}); K sampled sets on the 'sample' dimension, the predicted score with its 90% "
                   "conformal interval and the domain of applicability per target.")
    if "CAMELS" not in str(out.get("references", "")):
        camels = "CAMELS: Addor et al. (2017), doi:10.5194/hess-21-5293-2017; Newman et al. (2015), " \
                 "doi:10.5194/hess-19-209-2015"
        out["references"] = "; ".join(r for r in (str(out.get("references", "")), camels) if r)
    if kind == "grid":
        for axis, values in (("lat", lat), ("lon", lon)):
            res = _resolution(values)
            if res is not None:
                out[f"geospatial_{axis}_resolution"] = f"{res:g} degrees"
    if time_coverage is not None:
        start, end = (str(t)[:10] for t in time_coverage)
        out.update(time_coverage_start=start, time_coverage_end=end,
                   time_coverage_duration=_iso_duration(start, end), time_coverage_resolution="P1D")
    return {k: _plain(v) for k, v in out.items()}


def _plain(value: Any) -> Any:
    """An attribute value netCDF and zarr both take: str, int, float, or JSON text for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, np.integer)):
        return value
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(value)
    return json.dumps(value, default=str)
