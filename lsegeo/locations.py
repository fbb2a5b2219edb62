"""Where lsegeo finds its input data and puts its outputs.

The data directory is found, in this order, from

1. an explicit argument (``data_dir=`` in the API, ``--data-dir`` on the command line, or the
   ``data_dir`` key of a YAML config),
2. the environment variable ``LSEGEO_DATA_DIR``,
3. the fallback ``../shared/data`` relative to the current directory, then relative to the
   repository that holds this package.

The work directory, where stores are written by default, is ``LSEGEO_WORK_DIR`` or ``./work``;
the intake catalog of the products is ``<work dir>/catalog.yaml`` (:func:`catalog_path`), so
running a job changes no file of the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from lsegeo.errors import DataNotFoundError

__all__ = ["DATA_DIR_ENV", "WORK_DIR_ENV", "CATALOG_NAME", "data_dir_candidates", "resolve_data_dir", "work_dir",
           "catalog_path", "require_file"]

DATA_DIR_ENV = "LSEGEO_DATA_DIR"
WORK_DIR_ENV = "LSEGEO_WORK_DIR"
_FALLBACK = Path("..") / "shared" / "data"
#: file name of the intake catalog of the products, in the work directory
CATALOG_NAME = "catalog.yaml"


def data_dir_candidates(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """Return the places searched for the data directory, each with the setting it came from."""
    if data_dir is not None:
        return [(Path(data_dir).expanduser(), "explicit setting (data_dir / --data-dir)")]
    if os.environ.get(DATA_DIR_ENV):
        return [(Path(os.environ[DATA_DIR_ENV]).expanduser(), f"environment variable {DATA_DIR_ENV}")]
    repo = Path(__file__).resolve().parent.parent
    found = [(Path.cwd() / _FALLBACK, "fallback ../shared/data (from the current directory)")]
    if (repo / _FALLBACK).resolve() != found[0][0].resolve():
        found.append((repo / _FALLBACK, "fallback ../shared/data (from the lsegeo repository)"))
    return found


def resolve_data_dir(data_dir: str | os.PathLike | None = None, expect: str | None = None) -> Path:
    """Find the data directory.

    Parameters
    ----------
    data_dir : path-like, optional
        An explicit setting; when given, it is the only place searched.
    expect : str, optional
        A path relative to the data directory that must exist there (e.g. ``"camels_us"``);
        a candidate without it is skipped.

    Returns
    -------
    pathlib.Path
        The resolved data directory.

    Raises
    ------
    DataNotFoundError
        When no candidate exists (or holds ``expect``); the message lists every path searched.
    """
    candidates = data_dir_candidates(data_dir)
    for path, _ in candidates:
        if path.is_dir() and (expect is None or (path / expect).exists()):
            return path.resolve()
    searched = "\n".join(f"  - {p} ({how})" for p, how in candidates)
    what = f" containing '{expect}'" if expect else ""
    raise DataNotFoundError(
        f"no lsegeo data directory{what} was found. Searched:\n{searched}\n"
        f"Set {DATA_DIR_ENV}, pass --data-dir, or set data_dir in the config."
    )


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it exists, else raise :class:`DataNotFoundError` naming it and ``what``."""
    if not path.exists():
        raise DataNotFoundError(f"expected {what} at {path}, but it does not exist")
    return path


def work_dir() -> Path:
    """Return the default directory for stores that lsegeo writes (``LSEGEO_WORK_DIR`` or ./work)."""
    return Path(os.environ.get(WORK_DIR_ENV, "work")).expanduser()


def catalog_path(work: str | os.PathLike | None = None) -> Path:
    """Return the default intake catalog of the products: ``<work dir>/catalog.yaml``.

    Parameters
    ----------
    work : path-like, optional
        The work directory; default :func:`work_dir`.
    """
    return (Path(work).expanduser() if work is not None else work_dir()) / CATALOG_NAME
