"""CAMELS-US from NCAR's published files, re-laid out into lsegeo's layout and checked against the manifest.

NCAR publishes CAMELS-US (Newman et al. 2014, doi:10.5065/D6MW2F4D; Addor et al. 2017,
doi:10.5065/D6G73C3Q) at https://gdex.ucar.edu/dataset/camels.html: the attribute tables as single
files, the time series as the zip archive ``basin_timeseries_v1p2_metForcing_obsFlow.zip`` (about
3.4 GB; forcing of three products and USGS streamflow per gauge, in per-HUC folders). lsegeo's
layout differs (flat folders, bz2-compressed text, one streamflow table, withheld gauges removed),
so this module downloads the published files with pooch and makes lsegeo's files from them:

* ``attributes``: downloaded as published; ``camels_hydro.txt`` without the rows of the withheld
  gauges (:func:`withheld_gauges`);
* ``forcing``, ``maurer``, ``nldas``, ``streamflow_qc``: the archive's text file of each gauge,
  bz2-compressed (level 9, the compression of lsegeo's copy);
* ``streamflow``: the table ``camels_us_streamflow_cfs_1980-2014.csv.bz2`` built from the
  archive's ``<gauge>_streamflow_qc.txt`` files of every gauge that is not withheld (flow column
  in cfs, two decimals, an empty cell for a day absent from a file).

Every file made is checked against the manifest's size and SHA-256 before it is moved into place,
so what lands in the data directory is byte-identical to lsegeo's copy or nothing. lsegeo knows no
checksum of the archive from a source it could verify, so downloading it needs either its published
checksum (``archive_hash``, e.g. the MD5 that a repository's record page shows) or
``allow_unverified``. The archive is kept below
``<dest>/.camels_us_official/`` until every file is made (a rerun then reuses it) and removed after.
"""

from __future__ import annotations

import bz2
import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from lsegeo.errors import ConfigError, DataNotFoundError, InputFormatError
from lsegeo.ingest.downloads import ManifestEntry, download_one, run_files, verify_file

__all__ = ["ARCHIVE", "OFFICIAL_GROUPS", "withheld_gauges", "streamflow_table_text", "fetch_official"]

logger = logging.getLogger(__name__)

#: the published time-series archive (forcing and observed flow, CAMELS v1.2)
ARCHIVE = "basin_timeseries_v1p2_metForcing_obsFlow.zip"
STAGING = ".camels_us_official"
#: what can be made from the published files (the other groups are not part of NCAR's release,
#: or come in archives of several GB that lsegeo does not unpack: model output, shapes)
OFFICIAL_GROUPS = ("attributes", "forcing", "maurer", "nldas", "streamflow_qc", "streamflow")
_MEMBER = re.compile(r"(?:^|/)basin_dataset_public_v1p2/(?:basin_mean_forcing/(daymet|maurer|nldas)|(usgs_streamflow))"
                     r"/\d{2}/(\d{8})_(?:lump_(?:cida|maurer|nldas)_forcing_leap|streamflow_qc)\.txt$")
_KIND = {"forcing": "daymet", "maurer": "maurer", "nldas": "nldas", "streamflow_qc": "usgs_streamflow"}
#: first and last day of the streamflow table
TABLE_PERIOD = ("1980-01-01", "2014-12-31")


def withheld_gauges(gauges: Sequence[str]) -> set[str]:
    """The gauges whose streamflow lsegeo's copy withholds: every fifth in sorted order, the first included.

    The rule of the data README (135 of the 671 gauges of ``camels_name.txt``); the manifest's
    hashes of ``camels_hydro.txt`` and of the streamflow table check it on every official fetch.
    """
    return {g for i, g in enumerate(sorted(gauges)) if i % 5 == 0}


def _gauges_of(table: Path) -> list[str]:
    """Gauge ids of a ``;``-separated CAMELS attribute table, in file order."""
    lines = table.read_text().splitlines()[1:]
    return [line.split(";", 1)[0].strip() for line in lines if line.strip()]


def _filter_rows(text: str, drop: set[str]) -> str:
    """A ``;``-separated table without the rows of the gauges ``drop`` (header kept, bytes otherwise unchanged)."""
    lines = text.splitlines(keepends=True)
    return "".join([lines[0]] + [ln for ln in lines[1:] if ln.split(";", 1)[0].strip() not in drop])


def streamflow_table_text(qc_files: dict[str, bytes], gauges: Sequence[str]) -> bytes:
    """The streamflow table (CSV text) of lsegeo's layout, from CAMELS ``<gauge>_streamflow_qc.txt`` files.

    Parameters
    ----------
    qc_files : dict of str to bytes
        The text of each gauge's file: ``gauge year month day flow_cfs flag`` per line.
    gauges : sequence of str
        The columns, in order (``camels_name.txt`` order without the withheld gauges).

    Returns
    -------
    bytes
        ``date`` then one column per gauge, one row per day of :data:`TABLE_PERIOD`, flow in cfs
        with two decimals (``-999.00``: missing in the file), an empty cell for a day not in it.

    Raises
    ------
    InputFormatError
        A file that is not six whitespace-separated columns, or with a repeated date.
    """
    import pandas as pd

    days = pd.date_range(*TABLE_PERIOD, freq="D").strftime("%Y-%m-%d")
    columns = {}
    for gauge in gauges:
        name = f"{gauge}_streamflow_qc.txt"
        try:
            q = pd.read_csv(io.BytesIO(qc_files[gauge]), sep=r"\s+", header=None, dtype={0: str},
                            names=["gauge", "year", "month", "day", "flow", "flag"])
            dates = pd.to_datetime(q[["year", "month", "day"]]).dt.strftime("%Y-%m-%d")
            flow = pd.Series(q["flow"].astype(float).to_numpy(), index=dates.to_numpy())
        except (ValueError, KeyError, TypeError) as err:
            raise InputFormatError(name, None, f"expected six columns 'gauge year month day flow_cfs flag': {err}") \
                from err
        if flow.index.has_duplicates:
            raise InputFormatError(name, None, f"date {flow.index[flow.index.duplicated()][0]} appears twice")
        columns[gauge] = flow.reindex(days)
    table = pd.DataFrame(columns, index=pd.Index(days, name="date"))
    return table.to_csv(float_format="%.2f", lineterminator="\n").encode()


def _write_verified(data: bytes, entry: ManifestEntry, url: str, target: Path) -> None:
    """Write ``data`` beside ``target``, check it against ``entry`` and move it into place (else remove it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        verify_file(tmp, entry, url, target)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _retrieve_archive(url: str, staging: Path, progress: bool, archive_hash: str | None) -> Path:
    """Download (or reuse) the time-series archive with pooch; a damaged zip is removed and refused."""
    import pooch
    import requests

    try:
        path = Path(pooch.retrieve(url, known_hash=archive_hash, fname=ARCHIVE, path=staging, progressbar=progress))
    except requests.exceptions.RequestException as err:
        raise DataNotFoundError(f"could not download the CAMELS time-series archive from {url}: {err}") from err
    except ValueError as err:  # pooch: the hash does not match archive_hash
        raise InputFormatError(url, None, f"{err}") from err
    if not zipfile.is_zipfile(path):
        path.unlink()  # lsegeo wrote it
        raise InputFormatError(url, None, f"the download is not a zip archive (cut short?); removed {path}, run again")
    return path


def fetch_official(todo: Sequence[tuple[ManifestEntry, Path, bool]], base_url: str, root: Path, *,
                   done: Callable[[ManifestEntry, Path, bool], None], progress: bool = True, workers: int = 4,
                   allow_unverified: bool = False, archive_hash: str | None = None) -> list[str]:
    """Make the files ``todo`` from NCAR's published files (see the module docstring).

    Parameters
    ----------
    todo : sequence of (ManifestEntry, pathlib.Path, bool)
        Each file to make, its target and whether a file (with another hash) is there now.
    base_url : str
        Where the published files are (NCAR's file listing, or a copy of it).
    root : pathlib.Path
        The data directory.
    done : callable
        Called with each entry, target and the flag once its file is in place.
    progress, workers, allow_unverified, archive_hash
        As :func:`lsegeo.ingest.fetch.fetch_camels`.

    Returns
    -------
    list of str
        Manifest paths of documentation files (``readme.txt``, the attribute PDF) that the source
        does not have (HTTP error); they are skipped with a warning, the tables never are.

    Raises
    ------
    ConfigError
        A group that the published files do not hold, or the archive is needed without a checksum
        and without ``allow_unverified``.
    InputFormatError, DataNotFoundError
        A download or a made file does not match the manifest, a member of the archive is
        missing, or the server cannot be reached.
    """
    base = base_url.rstrip("/") + "/"
    other = sorted({e.group for e, _, _ in todo} - set(OFFICIAL_GROUPS))
    if other:
        raise ConfigError(f"group(s) {', '.join(other)} are not made from NCAR's published CAMELS files "
                          f"(official source: {', '.join(OFFICIAL_GROUPS)}); fetch them from a mirror of "
                          "lsegeo's layout (--base-url URL)")
    singles = [(e, t, x) for e, t, x in todo if e.group == "attributes"]
    from_archive = [(e, t, x) for e, t, x in todo if e.group != "attributes"]
    if from_archive and archive_hash is None and not allow_unverified:
        raise ConfigError(f"{len(from_archive)} file(s) come from NCAR's archive {ARCHIVE} (about 3.4 GB), whose "
                          "checksum lsegeo does not know: pass its published checksum (--archive-hash "
                          "md5:.../sha256:...), or --allow-unverified (allow_unverified=True) to download it "
                          "unverified; every file taken from it is still checked against the manifest")
    hydro = [(e, t, x) for e, t, x in singles if e.path.endswith("/camels_hydro.txt")]
    plain = [(e, t, x) for e, t, x in singles if (e, t, x) not in hydro]
    flags = {e.path: x for e, _, x in todo}
    root.mkdir(parents=True, exist_ok=True)

    unavailable: list[str] = []

    def single(entry: ManifestEntry, target: Path) -> None:
        try:
            download_one(base + Path(entry.path).name, target, entry, progress=progress)
        except DataNotFoundError as err:
            if entry.path.endswith(".txt") and Path(entry.path).name.startswith("camels_"):
                raise  # a table that the ingest reads
            logger.warning("skipped %s: %s", entry.path, err)  # readme.txt, the PDF: documentation only
            unavailable.append(entry.path)
            return
        done(entry, target, flags[entry.path])

    run_files([(e, t) for e, t, _ in plain], single, workers=workers, progress=progress, desc="CAMELS attributes")
    names_file = root / "camels_us" / "attributes" / "camels_name.txt"
    if hydro or from_archive:
        if not names_file.is_file():
            raise DataNotFoundError(f"expected the CAMELS attribute table camels_name.txt at {names_file} (fetch "
                                    "the group 'attributes' too): it says which gauges are withheld")
        all_gauges = _gauges_of(names_file)
        withheld = withheld_gauges(all_gauges)
    for entry, target, existed in hydro:
        import pooch

        url = base + "camels_hydro.txt"
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            raw = Path(pooch.retrieve(url, known_hash=None, fname="camels_hydro.txt", path=tmp))
            _write_verified(_filter_rows(raw.read_text(), withheld).encode(), entry, url, target)
        done(entry, target, existed)
    if not from_archive:
        return unavailable
    staging = root / STAGING
    url = base + ARCHIVE
    archive = _retrieve_archive(url, staging, progress, archive_hash)
    with zipfile.ZipFile(archive) as zf:
        members: dict[tuple[str, str], str] = {}
        for name in zf.namelist():
            m = _MEMBER.search(name)
            if m:
                members[(m.group(1) or m.group(2), m.group(3))] = name

        def member(kind: str, gauge: str) -> bytes:
            try:
                return zf.read(members[(kind, gauge)])
            except KeyError:
                raise DataNotFoundError(f"{url} has no {kind} file of gauge {gauge} (expected basin_dataset_public_"
                                        f"v1p2/.../{gauge}_*.txt)") from None

        def make(entry: ManifestEntry, target: Path) -> None:
            if entry.group == "streamflow":
                gauges = [g for g in all_gauges if g not in withheld]
                data = streamflow_table_text({g: member("usgs_streamflow", g) for g in gauges}, gauges)
            else:
                data = member(_KIND[entry.group], entry.gauge)
            _write_verified(bz2.compress(data, 9), entry, f"{url} ({entry.group} {entry.gauge})".rstrip(), target)
            done(entry, target, flags[entry.path])

        run_files([(e, t) for e, t, _ in from_archive], make, workers=workers, progress=progress,
                  desc="CAMELS files from the archive")
    shutil.rmtree(staging)  # every file is in place: the archive is no longer needed
    logger.info("removed the archive %s", archive)
    return unavailable
