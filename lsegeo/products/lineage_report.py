"""The lineage of a product: what it was made from, by which code, in which steps.

``lsegeo provenance PRODUCT`` prints :func:`format_lineage` of :func:`lineage`. A product is a
zarr store or a netCDF file written by lsegeo; its global (root) attributes hold the CF/ACDD set
of :func:`lsegeo.provenance.product_attrs` and its W3C PROV-JSON record (``lsegeo_prov_json``,
also in the ``<product>.prov.json`` sidecar).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lsegeo.errors import InputFormatError, StoreError

__all__ = ["lineage", "format_lineage"]

_PROV = "lsegeo_prov_json"


def _json(text: Any, default: Any) -> Any:
    if isinstance(text, (dict, list)):
        return text
    try:
        return json.loads(text) if text else default
    except (TypeError, ValueError):
        return text


def _read_attrs(path: Path) -> tuple[str, dict[str, Any]]:
    """(format, global attributes) of a store or netCDF file; InputFormatError when it is neither."""
    if path.is_dir():
        from lsegeo.io.stores import root_attrs

        try:
            return "zarr", root_attrs(path)
        except StoreError as err:
            raise InputFormatError(str(path), None, f"is not an lsegeo product ({err})") from err
    if path.is_file():
        import netCDF4

        try:
            with netCDF4.Dataset(path, "r") as nc:
                return "netcdf", {k: nc.getncattr(k) for k in nc.ncattrs()}
        except OSError as err:
            raise InputFormatError(str(path), None, "is not an lsegeo product: neither a zarr store nor a netCDF "
                                   f"file ({err})") from err
    from lsegeo.errors import DataNotFoundError

    raise DataNotFoundError(f"product {path} does not exist")


def _prov_inputs(prov: dict) -> dict[str, str]:
    out = {}
    for ent in (prov.get("entity") or {}).values():
        if "lsegeo:sha256" in ent:
            out[str(ent.get("prov:label", "?"))] = str(ent["lsegeo:sha256"])
    return out


def lineage(path: str | Path) -> dict[str, Any]:
    """Read what a product says about its making.

    Parameters
    ----------
    path : path-like
        A zarr store or netCDF file written by lsegeo.

    Returns
    -------
    dict
        ``path``, ``format``, ``title``, ``id``, ``date_created``, ``method``, ``model``,
        ``objective``, ``period``, ``domain`` (kind, name, bounding box), ``inputs`` (name ->
        sha256, from the ``lsegeo_inputs`` attribute or else the PROV record) and
        ``inputs_sha256``, ``config`` and ``config_sha256``, ``emulator_skill`` and
        ``crossvalidation`` (parsed JSON), ``code_version``, ``software_versions``, ``history``
        (one line per step, newest first), ``prov`` (the PROV-JSON record, from the product or its
        sidecar; ``{}`` when neither has one).

    Raises
    ------
    InputFormatError
        ``path`` is not a zarr store or netCDF file, or carries no lsegeo provenance.
    DataNotFoundError
        ``path`` does not exist.
    """
    from lsegeo.io.atomic import sidecar_path

    path = Path(path)
    fmt, attrs = _read_attrs(path)
    if not any(k in attrs for k in (_PROV, "lsegeo_version", "lsegeo_store_kind")):
        raise InputFormatError(str(path), None, "is not an lsegeo product: it carries no lsegeo provenance "
                               f"(no {_PROV}, lsegeo_version or lsegeo_store_kind global attribute)")
    prov = _json(attrs.get(_PROV), {})
    sidecar = sidecar_path(path)
    if not prov and sidecar.is_file():
        prov = _json(sidecar.read_text(), {})
    inputs = _json(attrs.get("lsegeo_inputs"), {}) or _prov_inputs(prov if isinstance(prov, dict) else {})
    history = [line for line in str(attrs.get("history", "")).split("\n") if line.strip()]
    return {
        "path": str(path), "format": fmt, "kind": attrs.get("lsegeo_store_kind", ""),
        "title": attrs.get("title", ""), "id": attrs.get("id", ""), "date_created": attrs.get("date_created", ""),
        "method": attrs.get("lsegeo_method", ""), "model": attrs.get("lsegeo_model", ""),
        "ctsm_version": attrs.get("lsegeo_ctsm_version", ""),
        "objective": attrs.get("lsegeo_objective", ""), "period": attrs.get("lsegeo_period", ""),
        "domain": {"kind": attrs.get("lsegeo_domain_kind", ""), "name": attrs.get("lsegeo_domain_name", ""),
                   "bounds": attrs.get("geospatial_bounds", "")},
        "inputs": dict(inputs), "inputs_sha256": attrs.get("lsegeo_inputs_sha256", ""),
        "config": _json(attrs.get("lsegeo_config"), {}), "config_sha256": attrs.get("lsegeo_config_sha256", ""),
        "emulator_skill": _json(attrs.get("lsegeo_emulator_skill"), {}),
        "crossvalidation": _json(attrs.get("lsegeo_crossvalidation"), {}),
        "code_version": attrs.get("lsegeo_version", ""),
        "software_versions": _json(attrs.get("lsegeo_software_versions"), {}),
        "history": history, "prov": prov if isinstance(prov, dict) else {},
        "prov_sidecar": str(sidecar) if sidecar.is_file() else "",
    }


#: a list longer than this is shortened in the printout (its first values and its length)
SHOWN_VALUES = 8


def _shortened(value: Any) -> Any:
    """``value`` as printed: lists longer than :data:`SHOWN_VALUES` cut, floats to 4 significant digits.

    A long list keeps its first 3 values and a count; :func:`lineage` keeps the full values.
    """
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _shortened(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > SHOWN_VALUES:
            return [_shortened(v) for v in value[:3]] + [f"... ({len(value)} values)"]
        return [_shortened(v) for v in value]
    return value


def _block(value: Any, indent: str = "  ") -> list[str]:
    if isinstance(value, dict):
        if not value:
            return [indent + "(none)"]
        return [f"{indent}{k}: {json.dumps(_shortened(v)) if isinstance(v, (dict, list)) else v}"
                for k, v in value.items()]
    return [indent + (str(value) if value not in ("", None) else "(none)")]


def format_lineage(info: dict[str, Any]) -> str:
    """The lineage of :func:`lineage` as text, one section per question (what, from what, how, by what code).

    Parameters
    ----------
    info : dict
        From :func:`lineage`.

    Returns
    -------
    str
        Lines without trailing newline.
    """
    dom = info.get("domain") or {}
    lines = [f"product        {info.get('path', '')} ({info.get('format', '')}, {info.get('kind', '') or 'lsegeo'})",
             f"title          {info.get('title', '')}",
             f"id             {info.get('id', '')}",
             f"created        {info.get('date_created', '')}",
             f"method         {info.get('method', '') or '(not recorded)'}",
             f"model          {info.get('model', '')}" + (f" (CTSM {info['ctsm_version']})"
                                                         if info.get("ctsm_version") else ""),
             f"objective      {info.get('objective', '')} ({info.get('period', '')} period)",
             "domain         " + ("  ".join(str(dom[k]) for k in ("kind", "name", "bounds") if dom.get(k))
                                     or "(not recorded)"),
             f"inputs         {len(info.get('inputs') or {})} (combined sha256 {info.get('inputs_sha256', '')})"]
    lines += [f"  {name}  {digest}" for name, digest in sorted((info.get("inputs") or {}).items())]
    lines.append(f"configuration  sha256 {info.get('config_sha256', '')}")
    lines += _block(info.get("config") or {})
    lines.append("emulator skill")
    lines += _block(info.get("emulator_skill") or {})
    lines.append("cross-validation")
    lines += _block(info.get("crossvalidation") or {})
    lines.append(f"code           lsegeo {info.get('code_version', '')}")
    lines += _block(info.get("software_versions") or {})
    lines.append("history (newest first)")
    lines += [f"  {h}" for h in info.get("history") or []] or ["  (none)"]
    prov = info.get("prov") or {}
    lines.append(f"PROV-JSON      {len(prov.get('entity') or {})} entities, {len(prov.get('activity') or {})} "
                 f"activities" + (f"; sidecar {info['prov_sidecar']}" if info.get("prov_sidecar") else ""))
    return "\n".join(lines)
