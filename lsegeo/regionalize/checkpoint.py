"""Checkpoints of a regionalization job: finished work is kept on disk until the products are written.

A regionalization spends its time in two steps that a killed client would otherwise redo: fitting
the emulators and the genetic algorithm of ``lse-optimise`` over the targets (one chunk of target
rows at a time). :class:`Checkpoint` keeps the result of each such piece in a folder of its own,
named by the job's digest (:func:`job_digest`: the settings and the content of the training set),
so that starting the same job again loads every finished piece instead of computing it. A piece is
written to a temporary file and renamed into place, so a piece on disk is always complete; a
different job (other settings, another calibration) has another digest and never sees them.

The folder holds a marker file (:data:`MARKER`); :meth:`Checkpoint.clear` removes the folder only
when the marker is there, so nothing that lsegeo did not write is ever deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Checkpoint", "MARKER", "job_digest", "training_digest", "digest_arrays", "checkpointed_emulators"]

logger = logging.getLogger(__name__)

#: the file that marks a checkpoint folder as lsegeo's
MARKER = "lsegeo-regionalize-checkpoint.json"


def digest_arrays(*parts: Any) -> str:
    """A 32-hex-digit BLAKE2b digest of arrays, bytes and JSON-able values, in order.

    Arrays contribute their dtype, shape and bytes (C order); other values their canonical JSON.
    """
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        elif isinstance(p, bytes | bytearray | memoryview):
            h.update(bytes(p))
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"|")
    return h.hexdigest()


def training_digest(training: Any) -> str:
    """The content of a regionalization's training set, as :func:`digest_arrays` gives it.

    Parameters
    ----------
    training : Training
        :func:`lsegeo.regionalize.training.load_training`'s result. Its basins, calibrated sets
        ``(n_basins, n_params)`` and their scores, locations and attribute table (names and
        values) enter the digest, and so do the emulator's rows when it has them (parameters,
        scores, basin of each row). A calibration that went on since, another store over the
        same basins, or other attributes or locations give another digest.

    Returns
    -------
    str
        32 hex digits.
    """
    def table(frame: Any) -> Any:
        return frame.to_json(orient="split", double_precision=15) if hasattr(frame, "to_json") else frame

    parts = [list(training.basins), np.asarray(training.calibrated, dtype=np.float64),
             table(training.calibrated_scores), np.asarray(training.lat, dtype=np.float64),
             np.asarray(training.lon, dtype=np.float64), table(training.attributes)]
    ts = getattr(training, "ts", None)
    if ts is not None:
        parts += [ts.params_unit, ts.target, ts.basin_index]
    return digest_arrays(*parts)


def job_digest(settings: Mapping[str, Any], training: Any) -> str:
    """The identity of a regionalization job: its settings and the content of its training set.

    Parameters
    ----------
    settings : mapping
        The job's settings that change its results (the ``regionalize`` section without
        ``overwrite`` and ``figures``, the ensemble periods, ...), JSON-able.
    training : Training
        :func:`lsegeo.regionalize.training.load_training`'s result, digested by
        :func:`training_digest`, so a calibration that went on since gives another digest.
    """
    return digest_arrays(settings, training_digest(training))


class Checkpoint:
    """A folder of finished pieces of one regionalization job.

    Parameters
    ----------
    root : path-like
        The folder (created on first use), e.g. ``<work>/.regionalize-checkpoints/<digest>``.

    Attributes
    ----------
    scope : str
        The digest of what every later piece depends on but cannot hash itself reproducibly
        (the emulators: their archives carry time stamps); set by the job once the emulators
        are fitted or loaded (:meth:`blobs` of their training digest).
    computed, resumed : dict
        Per kind of piece (``"emulators"``, ``"lse-optimise"``, ...), how many pieces this
        process computed and how many it loaded from disk.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.scope = ""
        self.computed: dict[str, int] = {}
        self.resumed: dict[str, int] = {}

    @property
    def started(self) -> bool:
        """Whether an earlier run of the job left this folder (it was interrupted before the end)."""
        return (self.root / MARKER).is_file()

    @property
    def digest(self) -> str | None:
        """The content digest the folder was started for (:meth:`start`), None before."""
        path = self.root / "inputs.digest"
        return path.read_text().strip() if path.is_file() else None

    def start(self, digest: str) -> None:
        """Bind the folder to the content ``digest`` of the job's inputs (:func:`job_digest`).

        A folder started for other content (the calibration went on since the interruption) is
        cleared first: its pieces do not belong to this run.
        """
        if self.digest not in (None, digest):
            self.clear()
        self._ready()
        if self.digest is None:
            self._write(self.root / "inputs.digest", digest.encode())

    def _ready(self) -> None:
        if not (self.root / MARKER).is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            self._write(self.root / MARKER, json.dumps({"written_by": "lsegeo", "purpose": "regionalization "
                                                        "checkpoints; removed when the job's products are "
                                                        "written"}).encode())

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # a piece on disk is always whole

    def _count(self, kind: str, resumed: bool, n: int = 1) -> None:
        book = self.resumed if resumed else self.computed
        book[kind] = book.get(kind, 0) + n

    def array(self, kind: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array of piece ``key``: loaded when finished before, else computed and saved.

        Parameters
        ----------
        kind : str
            What the piece is (a file-name prefix and the key of the counters).
        key : str
            Its digest (:func:`digest_arrays` of everything it depends on).
        compute : callable
            ``() -> numpy.ndarray``, run only when the piece is not on disk.
        """
        path = self.root / f"{kind}-{key}.npy"
        if path.is_file():
            self._count(kind, True)
            return np.load(path, allow_pickle=False)
        value = np.asarray(compute())
        self._ready()
        buf = _npy_bytes(value)
        self._write(path, buf)
        self._count(kind, False)
        return value

    def blobs(self, kind: str, key: str, compute: Callable[[], Iterable[bytes]]) -> list[bytes]:
        """A list of byte strings (e.g. emulator archives) of piece ``key``: loaded or computed and saved."""
        folder = self.root / f"{kind}-{key}"
        done = folder / "COMPLETE"
        if done.is_file():
            n = int(done.read_text())
            self._count(kind, True)
            return [(folder / f"{i}.bin").read_bytes() for i in range(n)]
        values = [bytes(b) for b in compute()]
        self._ready()
        folder.mkdir(parents=True, exist_ok=True)
        for i, b in enumerate(values):
            self._write(folder / f"{i}.bin", b)
        self._write(done, str(len(values)).encode())
        self._count(kind, False)
        return values

    def summary(self) -> dict[str, dict[str, int]]:
        """``{kind: {"computed": n, "resumed": m}}`` over this process's calls."""
        kinds = sorted(set(self.computed) | set(self.resumed))
        return {k: {"computed": self.computed.get(k, 0), "resumed": self.resumed.get(k, 0)} for k in kinds}

    def clear(self) -> None:
        """Remove the folder, only when it carries lsegeo's marker (and nothing when it does not exist)."""
        if (self.root / MARKER).is_file():
            shutil.rmtree(self.root, ignore_errors=True)
            parent = self.root.parent
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        elif self.root.exists():
            logger.warning("%s has no %s; it is left in place", self.root, MARKER)


def checkpointed_emulators(training: Any, settings: Any, ckpt: Checkpoint) -> list[Any]:
    """The regionalization's emulators: fitted, or loaded from the checkpoint of an interrupted run.

    Both ways go through the emulators' bytes, so a resumed run predicts exactly as an
    uninterrupted one. Sets ``ckpt.scope`` to the digest of their training set and settings.

    Parameters
    ----------
    training : Training
    settings : RegionalizeSettings
        Its ``emulator`` and ``n_emulators`` (:func:`lsegeo.regionalize.training.fit_emulators`).
    ckpt : Checkpoint

    Returns
    -------
    list of LargeSampleEmulator
    """
    from lsegeo.emulators import load_bytes
    from lsegeo.regionalize.training import fit_emulators

    ts = training.ts
    key = digest_arrays(ts.params_unit, ts.target, ts.attributes, ts.basin_index, list(ts.attribute_names),
                        repr(settings.emulator), settings.n_emulators)
    blobs = ckpt.blobs("emulators", key, lambda: [em.to_bytes() for em in fit_emulators(ts, settings)])
    ckpt.scope = key
    return [load_bytes(b) for b in blobs]


def _npy_bytes(value: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, value, allow_pickle=False)
    return buf.getvalue()
