"""Provenance of every product: CF/ACDD global attributes, history lines, hashes, PROV-JSON.

A product says what made it: the lsegeo version and the versions of the libraries that did the
work, the configuration (and its sha256), the sha256 of every input file, a ``history`` line per
step (newest first, as NCO and CTSM write it), and a W3C PROV-JSON record written beside it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import re
import socket
import uuid
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "sha256_file",
    "sha256_json",
    "combined_digest",
    "append_upstream_history",
    "store_identity",
    "software_versions",
    "history_line",
    "prepend_history",
    "product_attrs",
    "prov_json",
    "portable_path",
    "portable_config",
]

_PACKAGES = ("lsegeo", "numpy", "pandas", "xarray", "dask", "distributed", "zarr", "numba",
             "scipy", "intake", "xgboost-cpu", "pymoo", "torch")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes (as stored, e.g. still bz2-compressed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Return the sha256 of a JSON-serialisable object in canonical form (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def combined_digest(hashes: Mapping[str, str]) -> str:
    """Return one sha256 over a mapping of names to hashes (order-independent)."""
    return sha256_json(dict(sorted(hashes.items())))


def software_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Return the installed versions of lsegeo and the libraries that do its work."""
    out = {"python": platform.python_version()}
    for name in (*_PACKAGES, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=1)
def _lsegeo_version() -> str:
    """The installed lsegeo version (looked up once: reading package metadata is slow)."""
    return software_versions().get("lsegeo", "?")


def history_line(step: str, call: str) -> str:
    """Return one ``history`` line: ``<UTC time> lsegeo <version> <step>: <call>``."""
    return f"{_now()} lsegeo {_lsegeo_version()} {step}: {call}"


def prepend_history(attrs: dict[str, Any], line: str) -> dict[str, Any]:
    """Return a copy of ``attrs`` with ``line`` put first in its ``history``."""
    out = dict(attrs)
    old = out.get("history", "")
    out["history"] = line + ("\n" + old if old else "")
    return out


def append_upstream_history(attrs: dict[str, Any], sources: Mapping[str, str]) -> dict[str, Any]:
    """Return a copy of ``attrs`` whose ``history`` goes on with the history of the stores it came from.

    CF's ``history`` lists the steps that made a file, newest first. A product's own lines come
    first; then, for each source (name -> its ``history``), the source's lines, each followed by
    ``[<name>]``, so that the product names every step back to the ingest of its data.

    Parameters
    ----------
    attrs : dict
        The product's attributes (its ``history`` is kept first).
    sources : mapping of str to str
        Input name -> that input's ``history`` attribute (empty ones are skipped).
    """
    out = dict(attrs)
    lines = [str(out.get("history", ""))] if out.get("history") else []
    for name, history in sources.items():
        lines += [f"{line} [{name}]" for line in str(history or "").splitlines() if line.strip()]
    out["history"] = "\n".join(lines)
    return out


def product_attrs(
    *,
    title: str,
    summary: str,
    step: str,
    call: str,
    config: Mapping[str, Any] | None = None,
    inputs: Mapping[str, str] | None = None,
    references: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the global attributes of a product (CF-1.11 and ACDD-1.3, plus ``lsegeo:`` keys).

    Parameters
    ----------
    title, summary : str
        ACDD title and summary.
    step : str
        Name of the pipeline step that made the product (e.g. ``"ingest camels"``).
    call : str
        The command line or call that ran the step; it becomes the first ``history`` line.
    config : mapping, optional
        The configuration of the step; it is stored as JSON with its sha256.
    inputs : mapping, optional
        Input file names to their sha256; stored with a combined digest.
    references : str
        Citations (DOIs) of the methods and data.
    extra : mapping, optional
        More attributes to add.

    Returns
    -------
    dict
        Attributes that are valid both in zarr (JSON) and netCDF (strings and numbers only).
    """
    config = dict(config or {})
    inputs = dict(inputs or {})
    versions = software_versions()
    attrs: dict[str, Any] = {
        "Conventions": "CF-1.11 ACDD-1.3",
        "title": title,
        "summary": summary,
        "id": str(uuid.uuid4()),
        "naming_authority": "lsegeo",
        "date_created": _now(),
        "source": f"lsegeo {versions.get('lsegeo', '?')}",
        "references": references,
        "history": history_line(step, call),
        "lsegeo_step": step,
        "lsegeo_version": versions.get("lsegeo", "?"),
        "lsegeo_software_versions": json.dumps(versions, sort_keys=True),
        "lsegeo_config": json.dumps(config, sort_keys=True, default=str),
        "lsegeo_config_sha256": sha256_json(config),
        "lsegeo_inputs_sha256": combined_digest(inputs) if inputs else "",
        "lsegeo_n_inputs": len(inputs),
    }
    attrs.update(_identity())
    attrs.update(extra or {})
    return attrs


#: environment variable naming the product's creator (ACDD ``creator_name``); unset: none recorded
CREATOR_ENV = "LSEGEO_CREATOR"
#: environment variable that, set to ``1``, records the host name (``lsegeo_host``)
RECORD_HOST_ENV = "LSEGEO_RECORD_HOST"


def _identity() -> dict[str, str]:
    """Who and where, only when asked for: products record no user or host name by default."""
    out: dict[str, str] = {}
    if os.environ.get(CREATOR_ENV):
        out.update(creator_name=os.environ[CREATOR_ENV], creator_type="person")
    if os.environ.get(RECORD_HOST_ENV) == "1":
        out["lsegeo_host"] = socket.gethostname()
    return out


def prov_json(attrs: Mapping[str, Any], inputs: Mapping[str, str], product: str) -> str:
    """Return a W3C PROV-JSON document for a product made by one lsegeo step.

    Parameters
    ----------
    attrs : mapping
        The product's attributes as made by :func:`product_attrs`.
    inputs : mapping
        Input file names to their sha256.
    product : str
        The product's path or name.
    """
    from prov.model import ProvDocument

    doc = ProvDocument()
    doc.add_namespace("lsegeo", "https://github.com/lsegeo/lsegeo#")
    step = str(attrs.get("lsegeo_step", "step")).replace(" ", "_")
    activity = doc.activity(
        f"lsegeo:{step}_{attrs.get('id', uuid.uuid4())}",
        endTime=_dt.datetime.now(_dt.UTC),
        other_attributes={
            "lsegeo:config_sha256": attrs.get("lsegeo_config_sha256", ""),
            "lsegeo:call": str(attrs.get("history", "")).split("\n", 1)[0],
        },
    )
    agent = doc.agent(
        f"lsegeo:lsegeo-{attrs.get('lsegeo_version', '?')}",
        {"prov:type": "prov:SoftwareAgent",
         "lsegeo:software_versions": attrs.get("lsegeo_software_versions", "")},
    )
    doc.wasAssociatedWith(activity, agent)
    for i, (name, digest) in enumerate(sorted(inputs.items())):
        ent = doc.entity(f"lsegeo:input_{i}", {"prov:label": name, "lsegeo:sha256": digest})
        doc.used(activity, ent)
    out = doc.entity("lsegeo:product", {"prov:label": product,
                                        "lsegeo:inputs_sha256": attrs.get("lsegeo_inputs_sha256", "")})
    doc.wasGeneratedBy(out, activity)
    return doc.serialize(format="json", indent=1)


#: keys whose string values are paths (``store``, ``basins_store``, ``data_dir``, ``ensemble_path``, ...)
_PATH_KEY = re.compile(r"(^|_)(store|dir|path|file|catalog)s?$")
#: prefixes of values that already are a content identity (left as they are)
_IDENTITY_PREFIXES = ("sha256:", "id:")


def portable_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """A path as it reads on any machine: relative to ``base`` when below it, else its name.

    Parameters
    ----------
    path : path-like
        Absolute, or relative to the current directory.
    base : path-like, optional
        The directory that paths are made relative to; default the work directory
        (:func:`lsegeo.locations.work_dir`).

    Returns
    -------
    str
        A POSIX path relative to ``base`` (``"."`` for ``base`` itself), or, for a path outside
        ``base``, its last component only.
    """
    from lsegeo.locations import work_dir

    p = Path(path).expanduser().resolve()
    root = Path(base if base is not None else work_dir()).expanduser().resolve()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.name


def store_identity(path: str | os.PathLike) -> str | None:
    """The content identity of an lsegeo store (None when ``path`` is not one).

    ``sha256:`` of the store's inputs digest and configuration digest when it records them,
    else ``id:`` and its ACDD ``id``. Reads the root metadata document of the zarr v3 store
    (``zarr.json``) as JSON, without opening the store.
    """
    meta = Path(path) / "zarr.json"
    if not meta.is_file():
        return None
    try:
        attrs = json.loads(meta.read_text()).get("attributes") or {}
    except (OSError, ValueError):
        return None
    if attrs.get("lsegeo_inputs_sha256"):
        return "sha256:" + sha256_json({"inputs": attrs["lsegeo_inputs_sha256"],
                                        "config": attrs.get("lsegeo_config_sha256", "")})
    if attrs.get("id"):
        return f"id:{attrs['id']}"
    return None


def _portable_value(value: str | os.PathLike, base: str | os.PathLike | None) -> str:
    text = os.fspath(value)
    if not text or text.startswith(_IDENTITY_PREFIXES):
        return text
    path = Path(text).expanduser()
    return store_identity(path) or portable_path(path, base)


def portable_config(config: Any, base: str | os.PathLike | None = None) -> Any:
    """A copy of a configuration whose digest does not depend on where files lie.

    Every path value is replaced: a path to an lsegeo store (a zarr v3 store with lsegeo
    provenance) by the store's content identity (``sha256:`` over its
    ``lsegeo_inputs_sha256`` and ``lsegeo_config_sha256``, or ``id:`` and its ``id``), any
    other path by :func:`portable_path` (relative to ``base``, else its name). Hash the result
    (:func:`sha256_json`, or ``product_attrs(config=...)``) and the digest is the same on every
    machine and in every checkout; record the paths themselves in separate attributes.

    Parameters
    ----------
    config : mapping, sequence or scalar
        JSON-like configuration (e.g. ``model_dump(mode="json")`` of a config section).
    base : path-like, optional
        The work directory that relative paths are taken from; default
        :func:`lsegeo.locations.work_dir`.

    Returns
    -------
    Any
        The same structure with path values replaced. A path value is an :class:`os.PathLike`,
        a string under a key named like a path (``store``, ``*_store``, ``*_dir``, ``*_path``,
        ``*_file``, ``catalog`` and their plurals), or an absolute path string anywhere. A relative
        path is taken from the current directory, as the library opens it, so the absolute and
        the relative spelling of one file give the same value. Values already of the form
        ``sha256:...`` or ``id:...`` are kept.
    """
    def walk(value: Any, path_key: bool) -> Any:
        if isinstance(value, os.PathLike):
            return _portable_value(value, base)
        if isinstance(value, str):
            if path_key or (os.path.isabs(value) and value.strip() == value and "\n" not in value):
                return _portable_value(value, base)
            return value
        if isinstance(value, Mapping):
            return {k: walk(v, bool(_PATH_KEY.search(str(k)))) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, path_key) for v in value]
        return value

    return walk(config, False)
