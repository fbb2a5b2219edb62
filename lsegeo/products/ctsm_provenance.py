"""CF-1.11 / ACDD-1.3 metadata and provenance of the CTSM files made from a parameter product.

Every CTSM file lsegeo writes (the surface dataset copy, the distributed-parameter stream, the
per-basin ``paramfile.nc``/``fsurdat.nc`` copies; the basin cases' ``manifest.csv`` gets the
PROV-JSON sidecar only) is described as a product of its own, derived from the global
attributes of the parameter product it comes from (:func:`lsegeo.provenance.product_attrs` and
:func:`lsegeo.products.metadata.global_attrs`):

* the product's attributes are copied (the method, objective and period, the emulator's skill
  ``lsegeo_emulator_skill``, the cross-validation figures ``lsegeo_crossvalidation``, the
  configuration and its sha256, the software versions, ``references``, ``source``, ...), with
  their own ``id``, ``title``, ``summary``, ``comment`` and ``date_created``, ``Conventions =
  "CF-1.11, ACDD-1.3"``, ``lsegeo_product_id`` (the product's ``id``) and ``lsegeo_store_kind``;
* ``history``: the file's own step first, then the product's history (which goes on with the
  history of the stores it came from), then the lines of the CTSM file it copies;
* the inputs: the product's inputs and the sha256 of every CTSM file copied or read, listed in
  ``lsegeo_inputs`` (JSON) with ``lsegeo_inputs_sha256`` over them;
* the ACDD discovery set of :func:`~lsegeo.products.metadata.global_attrs` (``geospatial_*``
  from the file's own grid or basin, ``keywords``, ``license``, ``cdm_data_type``, ...).

CTSM reads the variables of these files only; the attributes are for people and catalogs.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from lsegeo.io.urls import write_text
from lsegeo.products.metadata import _plain, global_attrs

__all__ = ["CTSM_FILE_KINDS", "PROV_KEYS", "ctsm_file_attrs", "file_global_attrs", "case_file_attrs",
           "widened_range", "ctsm_file_provenance", "record_ctsm_file"]

#: ``lsegeo_store_kind`` -> (what the file is, what it holds; ``{base}``: the CTSM files it copies or reads)
CTSM_FILE_KINDS = {
    "ctsm_surfdata": ("CTSM surface dataset", "A copy of the CTSM surface dataset {base} whose spatially varying "
                      "parameter fields (FMAX, zbedrock) are set per land cell to the values of the parameter "
                      "product"),
    "ctsm_distparams": ("CTSM distributed-parameter stream", "The stream file of CTSM's use_distributed_parameters "
                        "(ESCOMP/CTSM pull request 3405): a map per distributable parameter of the product on "
                        "(time, lat, lon), the value of the parameter file {base} where the product has none"),
    "ctsm_cases": ("CTSM basin case inputs", "Per-basin CTSM case inputs: copies of the parameter file and surface "
                   "dataset ({base}) set to the basin's values of the parameter product, and user_nl_clm lines"),
}
#: the product attributes the PROV-JSON record of a CTSM file carries as ``lsegeo:<name>`` (the method and
#: its measured skill), besides the inputs, configuration digest and software PROV itself records
PROV_KEYS = ("lsegeo_method", "lsegeo_objective", "lsegeo_period", "lsegeo_emulator_skill", "lsegeo_crossvalidation",
             "lsegeo_product_id")
#: product attributes a CTSM file does not copy: its own are set instead, or they mark the product itself
_OWN = frozenset({"id", "title", "summary", "comment", "history", "date_created", "date_modified", "Conventions",
                  "lsegeo_store_kind", "lsegeo_prov_json", "lsegeo_job_key", "lsegeo_inputs", "lsegeo_n_inputs",
                  "lsegeo_inputs_sha256"})


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def ctsm_file_attrs(product: Mapping[str, object], kind: str, *, base: str = "") -> dict[str, object]:
    """The CF/ACDD global attributes of a CTSM file, derived from its parameter product's.

    Parameters
    ----------
    product : mapping
        The product's global attributes.
    kind : str
        A key of :data:`CTSM_FILE_KINDS` (its ``lsegeo_store_kind``).
    base : str
        The names of the CTSM files it copies or reads, for the summary.

    Returns
    -------
    dict
        Strings and numbers only (anything else as JSON text): the product's attributes but those
        of :data:`_OWN`, and ``Conventions``, ``id`` (new), ``title``, ``summary``, ``comment``,
        ``date_created``, ``lsegeo_product_id``, ``lsegeo_product_title``, ``lsegeo_store_kind``
        ``lsegeo_product_inputs_sha256`` and ``history`` (the product's; the writer puts its own
        line first).
    """
    what, holds = CTSM_FILE_KINDS.get(kind, ("CTSM file", "A CTSM input file made from the parameter product"))
    title = str(product.get("title") or "a parameter product of lsegeo")
    pid = str(product.get("id", ""))
    out: dict[str, object] = {k: _plain(v) for k, v in product.items() if k not in _OWN and v is not None}
    out.update({
        "Conventions": "CF-1.11, ACDD-1.3", "id": str(uuid.uuid4()), "title": f"{what} from: {title}",
        "summary": f"{holds.format(base=base or 'given')}. The parameter product is {pid or 'unnamed'} ({title}); "
                   f"method {product.get('lsegeo_method', '?')}, objective {product.get('lsegeo_objective', '?')}, "
                   f"{product.get('lsegeo_period', '?')} period.",
        "comment": "CTSM reads the variables of this file only; its global attributes record where the values come "
                   "from (lsegeo_product_id, lsegeo_inputs, lsegeo_emulator_skill, lsegeo_crossvalidation).",
        "date_created": _now(), "lsegeo_product_id": pid, "lsegeo_product_title": title, "lsegeo_store_kind": kind,
        "lsegeo_product_inputs_sha256": str(product.get("lsegeo_inputs_sha256", "")),
        "history": str(product.get("history", "") or ""),
    })
    return out


def file_global_attrs(ds: xr.Dataset, attrs: Mapping[str, object]) -> dict[str, object]:
    """``attrs`` completed with the ACDD discovery set of the file's own grid or basins.

    Parameters
    ----------
    ds : xarray.Dataset
        The part of the product the file holds (a grid, or one basin: ``lat``/``lon`` coordinates).
    attrs : mapping
        From :func:`ctsm_file_attrs` or :func:`ctsm_file_provenance`; they are kept.

    Returns
    -------
    dict
        :func:`lsegeo.products.metadata.global_attrs` of the coordinates with ``attrs``
        (``geospatial_*``, ``keywords``, ``license``, ``cdm_data_type``, ...), with the file's own
        ``lsegeo_store_kind`` and ``lsegeo_inputs``.
    """
    frame = xr.Dataset(coords={c: ds[c].variable for c in ("basin", "lat", "lon") if c in ds.variables})
    if "basin" in frame.dims:
        frame = frame.set_coords([c for c in ("lat", "lon") if c in frame])
    inputs = json.loads(str(attrs.get("lsegeo_inputs") or "{}"))
    out = global_attrs(frame, attrs, inputs)
    out["lsegeo_store_kind"] = attrs.get("lsegeo_store_kind", "ctsm")
    if not inputs:
        out.pop("lsegeo_inputs", None)
    return out


def widened_range(lower: float, upper: float, values: np.ndarray) -> np.ndarray:
    """A ``valid_range``: the parameter's bounds, widened to every finite value the file holds.

    CF (section 2.5.1) reads a value outside ``valid_range`` as missing; a CTSM file keeps values
    lsegeo did not set (the base file's off-land cells, the parameter file's default), which may
    lie outside the product's bounds and must stay valid.

    Returns
    -------
    numpy.ndarray
        ``[min(lower, values), max(upper, values)]``, float64.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    lo, hi = float(lower), float(upper)
    if v.size:
        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    return np.array([lo, hi], dtype=np.float64)


def _digest(path: str | Path, hashes: dict[str, str]) -> str:
    from lsegeo.provenance import sha256_file

    key = str(Path(path).resolve())
    if key not in hashes:
        hashes[key] = sha256_file(path)
    return hashes[key]


def _with_inputs(attrs: dict[str, object], inputs: Mapping[str, str]) -> dict[str, object]:
    from lsegeo.provenance import combined_digest

    attrs.update(lsegeo_inputs=json.dumps(dict(sorted(inputs.items()))), lsegeo_n_inputs=len(inputs),
                 lsegeo_inputs_sha256=combined_digest(inputs))
    return attrs


def case_file_attrs(one: xr.Dataset, attrs: Mapping[str, object], role: str, base: str | Path, *, basin: str,
                    sample: int | None, inputs: Mapping[str, str] | None,
                    hashes: dict[str, str]) -> dict[str, object]:
    """Global attributes of one per-basin copy (``paramfile.nc`` or ``fsurdat.nc``) of a basin case.

    Parameters
    ----------
    one : xarray.Dataset
        The product at the basin (``basin`` of length 1, with ``lat``/``lon``).
    attrs : mapping
        The cases' attributes (:func:`ctsm_file_attrs` of kind ``ctsm_cases``).
    role : {"paramfile", "surfdata"}
        Which copy.
    base : path-like
        The file copied; its sha256 enters the inputs.
    basin : str
    sample : int or None
        The sample of a mean-response product's case.
    inputs : mapping of str to str, optional
        The product's inputs (name -> sha256); default the product itself, by its
        ``lsegeo_inputs_sha256``.
    hashes : dict
        Path -> sha256 cache shared by the copies.
    """
    what = "parameter file" if role == "paramfile" else "surface dataset"
    case = f"basin {basin}" + (f", sample {sample}" if sample is not None else "")
    product_inputs = dict(inputs) if inputs else {
        f"parameter product {attrs.get('lsegeo_product_id', '')}": str(attrs.get("lsegeo_product_inputs_sha256", ""))}
    own = {k: v for k, v in attrs.items() if k not in ("lsegeo_inputs", "lsegeo_n_inputs", "lsegeo_inputs_sha256")}
    own.update(id=str(uuid.uuid4()), lsegeo_basin=basin, lsegeo_case_file=role,
               title=f"CTSM {what} of {case} from: {attrs.get('lsegeo_product_title', '')}",
               summary=f"A copy of the CTSM {what} {Path(base).name} set to the values of {case} of the parameter "
                       f"product {attrs.get('lsegeo_product_id', '')}. " + str(attrs.get("summary", "")))
    if sample is not None:
        own["lsegeo_sample"] = int(sample)
    _with_inputs(own, {**product_inputs, f"{role}:{Path(base).name}": _digest(base, hashes)})
    return file_global_attrs(one, own)


def ctsm_file_provenance(product: Mapping[str, object], inputs: Mapping[str, str],
                         base_files: Mapping[str, str | Path], kind: str, *,
                         hashes: dict[str, str] | None = None) -> tuple[dict[str, object], dict[str, str]]:
    """Global attributes and inputs of one CTSM file made from a parameter product.

    Parameters
    ----------
    product : mapping
        The product's global attributes (:func:`lsegeo.provenance.product_attrs` and the
        product's own: ``id``, ``lsegeo_version``, ``lsegeo_config_sha256``, ``history``,
        ``lsegeo_emulator_skill``, ``lsegeo_crossvalidation``, ...).
    inputs : mapping of str to str
        The product's inputs (name -> digest).
    base_files : mapping of str to path-like
        The CTSM files the new one copies or reads (``surfdata``, ``paramfile``); each enters the
        inputs with the sha256 of its bytes.
    kind : str
        What the file is (``ctsm_surfdata``, ``ctsm_distparams``, ``ctsm_cases``): its
        ``lsegeo_store_kind``.
    hashes : dict, optional
        A cache path -> sha256 shared by the calls of one job (a large surface dataset is read
        once, not once per file).

    Returns
    -------
    (dict, dict)
        The file's attributes (:func:`ctsm_file_attrs`, with ``lsegeo_inputs`` (JSON),
        ``lsegeo_n_inputs`` and ``lsegeo_inputs_sha256`` over the inputs) and its inputs.
    """
    hashes = {} if hashes is None else hashes
    everything = dict(inputs)
    for role, path in base_files.items():
        everything[f"{role}:{Path(path).name}"] = _digest(path, hashes)
    names = ", ".join(sorted({Path(p).name for p in base_files.values()}))
    attrs = ctsm_file_attrs(product, kind, base=names)
    return _with_inputs(attrs, everything), everything


def record_ctsm_file(path: str | Path, product: Mapping[str, object], attrs: Mapping[str, object],
                     inputs: Mapping[str, str], catalog: str | Path | None = None) -> list[str]:
    """Write the PROV-JSON sidecar of a CTSM file (``<path>.prov.json``) and its catalog entry.

    Parameters
    ----------
    path : path-like
        A netCDF file (registered in ``catalog``) or a folder's manifest (sidecar only).
    product, attrs, inputs :
        The product's attributes and the file's own from :func:`ctsm_file_provenance`.
    catalog : path-like, optional
        The intake catalog; netCDF files get an entry named after the file.

    Returns
    -------
    list of str
        The catalog entries written.

    Notes
    -----
    The record is :func:`lsegeo.provenance.prov_json` of the product's and the file's
    attributes (its call: the first ``history`` line of the netCDF file, the step that wrote
    it), with the :data:`PROV_KEYS` added to the generated entity as ``lsegeo:<name>``
    (``lsegeo:emulator_skill``, ``lsegeo:crossvalidation``, ... as JSON text).
    """
    from lsegeo.io.atomic import sidecar_path
    from lsegeo.provenance import prov_json

    path = Path(path)
    record = {**product, **attrs, "lsegeo_step": f"regionalize {attrs.get('lsegeo_store_kind', 'ctsm')}"}
    if path.suffix == ".nc" and path.is_file():
        import netCDF4

        with netCDF4.Dataset(path) as nc:
            if "history" in nc.ncattrs():
                record["history"] = str(nc.getncattr("history"))
    doc = json.loads(prov_json(record, inputs, str(path)))
    entity = doc.setdefault("entity", {}).setdefault("lsegeo:product", {})
    for key in PROV_KEYS:
        if record.get(key) not in (None, ""):
            value = _plain(record[key])
            entity[f"lsegeo:{key.removeprefix('lsegeo_')}"] = value if isinstance(value, str) else json.dumps(value)
    write_text(sidecar_path(path), json.dumps(doc, indent=1))
    if catalog is None or path.suffix != ".nc":
        return []
    from lsegeo.io.catalog import register_netcdf

    return register_netcdf(path, catalog, name=path.name.removesuffix(".nc"))
