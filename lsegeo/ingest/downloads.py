"""Downloading files checked against a manifest: pooch to a temporary file, moved into place only when right.

The building blocks of :mod:`lsegeo.ingest.fetch` (mirrors) and :mod:`lsegeo.ingest.fetch_official`
(NCAR's published files): one manifest entry (:class:`ManifestEntry`), the check of a file already
present (:func:`check_present`), the download of one file (:func:`download_one`) and a small thread
pool with one progress bar over the files (:func:`run_files`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from lsegeo.errors import DataNotFoundError, InputFormatError, LsegeoError, MissingDependencyError

__all__ = ["BIG_FILE", "ManifestEntry", "sha256_of", "check_present", "verify_file", "download_one", "run_files",
           "pooch_module"]

#: files from this size on get a progress bar of their own [bytes]
BIG_FILE = 4 * 2**20
_TIMEOUT = 60  # seconds without data before a download is given up
_CHUNK = 2**16


@dataclass(frozen=True)
class ManifestEntry:
    """One file of the manifest.

    Attributes
    ----------
    path : str
        POSIX path below the data directory (``camels_us/attributes/camels_topo.txt``).
    size : int
        Size in bytes.
    sha256 : str
        SHA-256 of the file's bytes, lower-case hex.
    group : str
        One of :data:`lsegeo.ingest.fetch.GROUPS`.
    gauge : str
        The 8-digit gauge of a per-gauge file, else ``""``.
    """

    path: str
    size: int
    sha256: str
    group: str
    gauge: str = ""


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, lower-case hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def check_present(target: Path, entry: ManifestEntry, overwrite: bool) -> bool:
    """Whether ``target`` already holds ``entry`` (True: skip it).

    Raises
    ------
    InputFormatError
        ``target`` exists with another size or hash and ``overwrite`` is False: lsegeo did not
        write it and does not replace it.
    """
    if not target.exists():
        return False
    if target.is_file() and target.stat().st_size == entry.size and sha256_of(target) == entry.sha256:
        return True
    if overwrite and target.is_file():
        return False
    got = f"{target.stat().st_size} bytes, sha256 {sha256_of(target)}" if target.is_file() else "not a file"
    raise InputFormatError(str(target), None, f"exists but is not the manifest's {entry.path} (expected "
                                              f"{entry.size} bytes, sha256 {entry.sha256}; got {got}). It is "
                                              "kept: move it away, or pass --overwrite (overwrite=True) to replace it")


def verify_file(path: str | os.PathLike, entry: ManifestEntry, url: str, target: Path) -> None:
    """Refuse a downloaded or re-laid-out file whose size or SHA-256 is not the manifest's.

    Raises
    ------
    InputFormatError
        Naming the target, the URL, the expected and the received size and hash.
    """
    size = os.path.getsize(path)
    digest = sha256_of(Path(path))
    if size != entry.size or digest != entry.sha256:
        what = "a truncated or damaged download" if size < entry.size else "not the manifest's file"
        raise InputFormatError(str(target), None, f"{what} from {url}: expected {entry.size} bytes with sha256 "
                                                  f"{entry.sha256}, got {size} bytes with sha256 {digest}; nothing "
                                                  "was written at the target")


def pooch_module():
    """The pooch module; :class:`MissingDependencyError` when it is not installed."""
    try:
        import pooch
    except ImportError as err:  # a core dependency; a broken environment only
        raise MissingDependencyError("fetching CAMELS-US needs the package 'pooch' (pip install pooch)") from err
    return pooch


def download_one(url: str, target: Path, entry: ManifestEntry, *, progress: bool = False) -> None:
    """Download one file with pooch, verified against ``entry`` before it is moved to ``target``.

    Raises
    ------
    InputFormatError
        The download was cut short or has the wrong hash (:func:`verify_file`); no file is left
        at ``target`` and pooch removes its temporary file.
    DataNotFoundError
        The server answered with an HTTP error (404, ...) or could not be reached.
    """
    import requests

    pooch = pooch_module()
    http = pooch.HTTPDownloader(progressbar=progress and entry.size >= BIG_FILE, timeout=_TIMEOUT, chunk_size=_CHUNK)

    def downloader(url, output_file, pooch_obj, check_only=False):
        if check_only:
            return http(url, output_file, pooch_obj, check_only=True)
        try:
            http(url, output_file, pooch_obj)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as err:
            if isinstance(err, requests.exceptions.ConnectionError) and os.path.getsize(output_file) == 0:
                raise
            raise InputFormatError(str(target), None, f"download from {url} was cut short ({err}): expected "
                                                      f"{entry.size} bytes with sha256 {entry.sha256}, got "
                                                      f"{os.path.getsize(output_file)} bytes; nothing was "
                                                      "written at the target") from err
        verify_file(output_file, entry, url, target)

    try:
        pooch.retrieve(url, known_hash=f"sha256:{entry.sha256}", fname=target.name, path=target.parent,
                       downloader=downloader)
    except LsegeoError:
        raise
    except requests.exceptions.HTTPError as err:
        raise DataNotFoundError(f"could not download {entry.path} from {url}: {err}") from err
    except requests.exceptions.RequestException as err:
        raise DataNotFoundError(f"could not reach {url} for {entry.path}: {err}") from err


def run_files(items: Sequence[tuple[ManifestEntry, Path]], work: Callable[[ManifestEntry, Path], None], *,
              workers: int, progress: bool, desc: str) -> None:
    """Run ``work(entry, target)`` on a small thread pool, with one bar over the files; the first error is raised.

    After an error no new file is started; the files under way finish (each either complete and
    verified, or absent).
    """
    from tqdm.auto import tqdm

    if not items:
        return
    bar = tqdm(total=len(items), desc=desc, unit="file", disable=not progress, leave=True)
    lock = threading.Lock()
    stop = threading.Event()

    def task(item):
        if stop.is_set():
            return
        try:
            work(*item)
        except BaseException:
            stop.set()
            raise
        with lock:
            bar.update(1)

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(task, item) for item in items]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in futures:
                fut.cancel()
        for fut in futures:
            if fut.done() and not fut.cancelled() and fut.exception() is not None:
                raise fut.exception()
    finally:
        bar.close()
