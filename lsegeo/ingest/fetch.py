"""Fetch CAMELS-US into lsegeo's data layout (``lsegeo data fetch camels``), checked file by file.

Every file lsegeo can fetch is listed in the package data file ``lsegeo/data/camels_us_manifest.csv``:
its path below the data directory (``camels_us/...``, the layout of ``docs/data.md``), its size in
bytes, its SHA-256, its group (``attributes``, ``forcing``, ``streamflow``, ...) and, for per-gauge
files, the gauge. The manifest lists exactly the files of lsegeo's copy; in particular the observed
streamflow of the withheld gauges is not in it, and nothing here assumes that every gauge has
streamflow.

Two kinds of source:

``mirror``
    Any HTTP(S) server with lsegeo's layout below a base URL (``--base-url`` or
    ``LSEGEO_CAMELS_URL``); every file is downloaded with :func:`pooch.retrieve`.
``official``
    NCAR's published files (:mod:`lsegeo.ingest.fetch_official`): the attribute tables and the
    time-series zip archive, re-laid out into lsegeo's layout.

Both verify every file against the manifest. A file is downloaded to a temporary file beside its
target (pooch) and moved into place only when its size and SHA-256 match, so an interrupted or
damaged download never leaves a file at the target path. A file already present with the right
hash is skipped (resume); one present with another hash was not written by lsegeo and is refused,
never replaced, unless ``overwrite``.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from lsegeo.errors import ConfigError, DataNotFoundError, InputFormatError
from lsegeo.ingest.downloads import ManifestEntry, check_present, download_one, pooch_module, run_files, sha256_of
from lsegeo.locations import DATA_DIR_ENV, data_dir_candidates

__all__ = ["URL_ENV", "OFFICIAL_URL", "GROUPS", "DEFAULT_GROUPS", "ManifestEntry", "FetchReport", "read_manifest",
           "build_manifest", "write_manifest", "select_entries", "fetch_camels", "format_fetch_report"]

logger = logging.getLogger(__name__)

#: environment variable with the base URL of a source
URL_ENV = "LSEGEO_CAMELS_URL"
#: NCAR's file listing of CAMELS (GDEX, doi:10.5065/D6MW2F4D and doi:10.5065/D6G73C3Q)
OFFICIAL_URL = "https://gdex.ucar.edu/dataset/camels/file/"
MANIFEST_NAME = "camels_us_manifest.csv"
#: the groups of files, by their directory below ``camels_us/``; the first three are what
#: ``lsegeo ingest camels`` reads
GROUPS: dict[str, str] = {
    "attributes": "attributes v2.0: the seven camels_<table>.txt, readme.txt, the attribute PDF",
    "forcing": "Daymet basin-mean forcing, one file per gauge (forcing/daymet)",
    "streamflow": "the observed streamflow table, cfs, all but the withheld gauges",
    "streamflow_qc": "as-published streamflow files with QC flags (a few gauges)",
    "maurer": "Maurer basin-mean forcing (60 gauges)",
    "nldas": "NLDAS basin-mean forcing (60 gauges)",
    "attributes_extra": "HydroATLAS and Noah-MP attributes (third party)",
    "shapes": "basin polygons of two gauges (NLDI)",
    "model_outputs": "SAC-SMA + Snow-17 benchmark output (a few gauges)",
    "model_parameters": "CFE a-priori parameters (third party)",
}
DEFAULT_GROUPS = ("attributes", "forcing", "streamflow")


def classify(rel: str) -> tuple[str, str]:
    """The group and gauge of a path below ``camels_us/`` (``forcing/daymet/0101..._lump...`` -> forcing, gauge)."""
    parts = rel.split("/")
    name = parts[-1]
    gauge = name[:8] if name[:8].isdigit() and (len(name) == 8 or not name[8].isdigit()) else ""
    top = parts[0]
    if top == "forcing":
        return {"daymet": "forcing"}.get(parts[1], parts[1]), gauge
    if top == "streamflow":
        return ("streamflow_qc", gauge) if name.endswith("_streamflow_qc.txt.bz2") else ("streamflow", "")
    if top in ("attributes", "attributes_extra"):
        return top, ""
    return top, gauge


def build_manifest(data_dir: str | os.PathLike) -> list[ManifestEntry]:
    """List every file below ``<data_dir>/camels_us`` with its size, SHA-256, group and gauge.

    Parameters
    ----------
    data_dir : path-like
        A data directory holding ``camels_us/`` in lsegeo's layout.

    Returns
    -------
    list of ManifestEntry
        Sorted by path. This is how ``lsegeo/data/camels_us_manifest.csv`` was made
        (:func:`write_manifest`).
    """
    root = Path(data_dir) / "camels_us"
    if not root.is_dir():
        raise DataNotFoundError(f"expected a camels_us directory at {root}, but it does not exist")
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        group, gauge = classify(rel)
        out.append(ManifestEntry(f"camels_us/{rel}", path.stat().st_size, sha256_of(path), group, gauge))
    return out


def write_manifest(entries: Iterable[ManifestEntry], out: str | os.PathLike) -> Path:
    """Write a manifest as CSV (``path,bytes,sha256,group,gauge``)."""
    out = Path(out)
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "bytes", "sha256", "group", "gauge"])
        w.writerows([e.path, e.size, e.sha256, e.group, e.gauge] for e in entries)
    return out


def read_manifest(path: str | os.PathLike | None = None) -> list[ManifestEntry]:
    """Read a manifest; default the packaged ``camels_us_manifest.csv``.

    Raises
    ------
    InputFormatError
        A row without the five columns, a size that is not a whole number, a hash that is not
        64 hex digits or an unknown group; the message names the line.
    """
    if path is None:
        text = resources.files("lsegeo.data").joinpath(MANIFEST_NAME).read_text()
        where = f"lsegeo/data/{MANIFEST_NAME}"
    else:
        text, where = Path(path).read_text(), str(path)
    rows = list(csv.reader(text.splitlines()))
    if not rows or rows[0] != ["path", "bytes", "sha256", "group", "gauge"]:
        raise InputFormatError(where, 1, "expected the header path,bytes,sha256,group,gauge")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        ok = (len(row) == 5 and row[1].isdigit() and len(row[2]) == 64
              and all(c in "0123456789abcdef" for c in row[2]) and row[3] in GROUPS)
        if not ok:
            raise InputFormatError(where, line, f"expected path, size in bytes, 64 hex digits of SHA-256, one of the "
                                                f"groups {', '.join(GROUPS)}, gauge; got {row}")
        out.append(ManifestEntry(row[0], int(row[1]), row[2], row[3], row[4]))
    return out


def _groups(only: str | Sequence[str] | None) -> list[str]:
    if only is None:
        return list(DEFAULT_GROUPS)
    names = [s.strip() for s in (only.split(",") if isinstance(only, str) else only) if s.strip()]
    if names == ["all"]:
        return list(GROUPS)
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise ConfigError(f"unknown group(s) {', '.join(unknown) or '(none given)'} in only/--only; known groups: "
                          f"{', '.join(GROUPS)} (or 'all')")
    return names


def select_entries(entries: Sequence[ManifestEntry], only: str | Sequence[str] | None = None,
                   basins: Sequence[str] | None = None) -> tuple[list[ManifestEntry], list[str]]:
    """The files of some groups and gauges.

    Parameters
    ----------
    entries : sequence of ManifestEntry
        The manifest.
    only : str or sequence of str, optional
        Groups (comma-separated text or a list; ``"all"``: every group); default
        :data:`DEFAULT_GROUPS`, what ``lsegeo ingest camels`` reads.
    basins : sequence of str, optional
        Gauges whose per-gauge files to take; tables of all gauges are always taken. Default: all.

    Returns
    -------
    selected : list of ManifestEntry
    missing : list of str
        Asked-for gauges without any per-gauge file in the chosen groups (a withheld gauge has
        forcing but no streamflow file, say; 02464000 has no forcing file).

    Raises
    ------
    ConfigError
        An unknown group.
    UnknownBasinError
        A gauge id that is not an 8-digit string.
    """
    from lsegeo.io.camels import check_gauge_id

    groups = set(_groups(only))
    wanted = None if basins is None else {check_gauge_id(str(b), "basins") for b in basins}
    chosen = [e for e in entries if e.group in groups and (not e.gauge or wanted is None or e.gauge in wanted)]
    covered = {e.gauge for e in chosen if e.gauge}
    has_gauge_files = any(e.gauge for e in entries if e.group in groups)
    missing = sorted(wanted - covered) if wanted is not None and has_gauge_files else []
    return chosen, missing


@dataclass
class FetchReport:
    """What a fetch did.

    Attributes
    ----------
    dest : pathlib.Path
        The data directory the files went to (they lie below ``dest/camels_us``).
    source : str
        ``"mirror"`` or ``"official"``.
    base_url : str
        Where they came from.
    downloaded : int
        Files written (downloaded, or re-laid out from an archive).
    skipped : int
        Files already present with the manifest's hash.
    replaced : int
        Of ``downloaded``, files that replaced one with another hash (``overwrite``).
    bytes : int
        Bytes of the files written.
    seconds : float
        Wall time.
    missing_basins : list of str
        Asked-for gauges with no per-gauge file in the chosen groups.
    unavailable : list of str
        Documentation files (readme, PDF) that the official source does not have, skipped.
    files : list of str
        The manifest paths written.
    """

    dest: Path
    source: str
    base_url: str
    downloaded: int = 0
    skipped: int = 0
    replaced: int = 0
    bytes: int = 0
    seconds: float = 0.0
    missing_basins: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def resolve_dest(dest: str | os.PathLike | None) -> Path:
    """The data directory to fetch into: ``dest``, else the first existing candidate, else ``LSEGEO_DATA_DIR``.

    Raises
    ------
    ConfigError
        Neither ``dest`` nor ``LSEGEO_DATA_DIR`` is given and no data directory exists yet.
    """
    if dest is not None:
        return Path(dest).expanduser()
    candidates = data_dir_candidates(None)
    for path, _ in candidates:
        if path.is_dir():
            return path.resolve()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    searched = ", ".join(str(p) for p, _ in candidates)
    raise ConfigError(f"no data directory exists yet (searched {searched}); pass --dest DIR (dest=) or set "
                      f"{DATA_DIR_ENV} to say where CAMELS-US should go")


def resolve_source(source: str | None, base_url: str | None) -> tuple[str, str]:
    """The source kind and base URL: explicit, else ``LSEGEO_CAMELS_URL`` (a mirror), else NCAR (official)."""
    url = base_url or os.environ.get(URL_ENV) or None
    if source is None:
        source = "mirror" if url else "official"
    if source not in ("mirror", "official"):
        raise ConfigError(f"unknown source {source!r}; known sources: mirror, official")
    if source == "mirror" and not url:
        raise ConfigError(f"a mirror needs a base URL: pass --base-url (base_url=) or set {URL_ENV}")
    url = url or OFFICIAL_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"base URL {url!r} is not an http:// or https:// URL")
    return source, url


def fetch_camels(dest: str | os.PathLike | None = None, *, base_url: str | None = None, only=None,
                 basins: Sequence[str] | None = None, progress: bool = True, overwrite: bool = False,
                 source: str | None = None, workers: int = 4, allow_unverified: bool = False,
                 archive_hash: str | None = None, manifest: str | os.PathLike | None = None) -> FetchReport:
    """Download CAMELS-US into lsegeo's data layout, every file checked against the manifest.

    Parameters
    ----------
    dest : path-like, optional
        The data directory; the files go below ``dest/camels_us``. Default: the data directory
        (:func:`lsegeo.locations.resolve_data_dir` order), or ``LSEGEO_DATA_DIR`` when none exists yet.
    base_url : str, optional
        Base URL of the source; default ``LSEGEO_CAMELS_URL``, else NCAR (:data:`OFFICIAL_URL`).
    only : str or sequence of str, optional
        Groups of :data:`GROUPS` (``"attributes,forcing"``, or ``"all"``); default
        :data:`DEFAULT_GROUPS`, everything ``lsegeo ingest camels`` reads.
    basins : sequence of str, optional
        Gauges whose per-gauge files to fetch; tables are always fetched whole. Default: all.
    progress : bool
        Progress bars on standard error: one over the files, one per file of 4 MiB or more.
    overwrite : bool
        Replace files present with another hash (otherwise they are refused, never replaced).
    source : {"mirror", "official"}, optional
        The kind of source; default ``"mirror"`` when a base URL is set, else ``"official"``.
    workers : int
        Files downloaded at once.
    allow_unverified : bool
        Official source only: accept the time-series archive without a known checksum (the files
        taken from it are still checked against the manifest).
    archive_hash : str, optional
        Official source only: the published checksum of the time-series archive (``"md5:..."``,
        ``"sha256:..."``), checked by pooch.
    manifest : path-like, optional
        Another manifest (default the packaged one).

    Returns
    -------
    FetchReport

    Raises
    ------
    InputFormatError
        A download with the wrong size or hash, or a present file with another hash (no
        ``overwrite``); the message names the file, URL, expected and received size and hash.
    DataNotFoundError
        An HTTP error or an unreachable server.
    ConfigError
        An unknown group or source, no base URL for a mirror, no destination, or an official
        archive without a checksum and without ``allow_unverified``.
    UnknownBasinError
        A gauge id that is not an 8-digit string.
    """
    t0 = time.perf_counter()
    kind, url = resolve_source(source, base_url)
    root = resolve_dest(dest)
    entries, missing = select_entries(read_manifest(manifest), only, basins)
    report = FetchReport(dest=root, source=kind, base_url=url, missing_basins=missing)
    pooch_logger = pooch_module().get_logger()
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)  # lsegeo reports per run, not per file
    try:
        todo = []
        for entry in entries:
            target = root / entry.path
            if check_present(target, entry, overwrite):
                report.skipped += 1
            else:
                todo.append((entry, target, target.exists()))
        logger.info("CAMELS-US from %s (%s): %d files to fetch, %d present", url, kind, len(todo), report.skipped)
        lock = threading.Lock()

        def done(entry: ManifestEntry, target: Path, existed: bool) -> None:
            with lock:
                report.downloaded += 1
                report.replaced += int(existed)
                report.bytes += entry.size
                report.files.append(entry.path)

        if kind == "mirror":
            existed = {e.path: x for e, _, x in todo}

            def work(entry: ManifestEntry, target: Path) -> None:
                download_one(f"{url.rstrip('/')}/{quote(entry.path)}", target, entry, progress=progress)
                done(entry, target, existed[entry.path])

            run_files([(e, t) for e, t, _ in todo], work, workers=workers, progress=progress, desc="CAMELS-US files")
        else:
            from lsegeo.ingest.fetch_official import fetch_official

            report.unavailable = fetch_official(todo, url, root, done=done, progress=progress, workers=workers,
                                                allow_unverified=allow_unverified, archive_hash=archive_hash)
    finally:
        pooch_logger.setLevel(level)
    report.seconds = time.perf_counter() - t0
    return report


def format_fetch_report(report: FetchReport) -> str:
    """The report as a few lines of text."""
    mib = report.bytes / 2**20
    lines = [f"CAMELS-US in {report.dest / 'camels_us'} from {report.base_url} ({report.source}): "
             f"{report.downloaded} files fetched ({mib:.1f} MiB, {report.replaced} replaced), "
             f"{report.skipped} already present, every file SHA-256 checked, in {report.seconds:.1f} s"]
    if report.missing_basins:
        lines.append(f"no per-gauge file in the chosen groups for: {', '.join(report.missing_basins)}")
    if report.unavailable:
        lines.append(f"not at the source, skipped: {', '.join(report.unavailable)}")
    return "\n".join(lines)
