"""What every emulator shares: the :class:`Emulator` protocol, the LSE backend registry, saving.

An emulator predicts the scores of (basin, parameter vector) rows::

    em.predict(basin_idx, u) -> (n, n_targets)

with ``basin_idx`` an index into ``em.basins`` and ``u`` the parameters in the unit cube of the
ensemble's parameter space (:func:`lsegeo.emulators.features.space_from_store`). The optimiser,
the sensitivity analysis and the calibration loop use nothing else.

Saving
------
An emulator is saved as a directory holding only libraries' own formats: XGBoost boosters
(``Booster.save_model`` to ``.ubj``, or ``save_raw("ubj")`` bytes in an ``.npz``), torch
``state_dict`` files (``torch.save``, read back with ``weights_only=True``), numpy ``.npz``
archives (read with ``allow_pickle=False``) and JSON metadata (``emulator.json``). Nothing is
pickled. :meth:`to_bytes` zips that directory (to ship an emulator to dask workers) and
:func:`load_bytes` reads it back; :func:`load` reads a directory of either kind. Files that
others put beside the emulator's own (e.g. a skill report) are ignored.

LSE backends
------------
:data:`BACKENDS` maps a backend name to a factory ``factory(seed=..., n_jobs=..., **options)``
returning an object with ``fit(X, Y)``, ``predict(X) -> (n, n_targets)``, ``save(directory)``,
``load(directory, n_targets)`` and ``config() -> dict`` (JSON). :func:`register_backend` adds one.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "META_FILE",
    "Emulator",
    "Backend",
    "BACKENDS",
    "EMULATOR_KINDS",
    "register_backend",
    "make_backend",
    "load",
    "load_bytes",
    "save_npz",
    "load_npz",
    "write_meta",
    "read_meta",
    "check_rows",
]

FORMAT = "lsegeo-emulator"
FORMAT_VERSION = 1
META_FILE = "emulator.json"


@runtime_checkable
class Emulator(Protocol):
    """The interface of every lsegeo emulator (large-sample or single-site)."""

    kind: str  # "lse" or "sse"

    @property
    def basins(self) -> list[str]:
        """Gauge ids; ``basin_idx`` of :meth:`predict` indexes this list."""

    @property
    def param_names(self) -> list[str]:
        """Parameter names, the columns of ``u``."""

    @property
    def target_names(self) -> list[str]:
        """Objective names, the columns of the predictions."""

    @property
    def skill(self) -> dict[str, Any]:
        """Fit information and cross-validated skill (JSON-serialisable, mutable)."""

    def predict(self, basin_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Predicted scores ``(n, n_targets)`` of rows ``(basin_idx[i], u[i])``."""

    def predict_features(self, attr_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Predicted scores from encoded attribute rows ``(n, n_attr)`` (LSE only)."""

    def save(self, directory: str | Path) -> Path:
        """Write the emulator into ``directory`` (created) and return it."""

    @classmethod
    def load(cls, directory: str | Path, n_jobs: int | None = None) -> Emulator:
        """Read an emulator written by :meth:`save`."""

    def to_bytes(self) -> bytes:
        """The saved directory as one zip archive."""


class Backend(Protocol):
    """A regression model of the large-sample emulator: features -> targets."""

    name: str

    def fit(self, X: np.ndarray, Y: np.ndarray) -> Backend: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    def load(self, directory: Path, n_targets: int) -> None: ...

    def config(self) -> dict[str, Any]: ...


def _xgboost(**kw: Any) -> Backend:
    from lsegeo.emulators.backends.trees import XGBoostBackend

    return XGBoostBackend(**kw)


def _random_forest(**kw: Any) -> Backend:
    from lsegeo.emulators.backends.trees import XGBRandomForestBackend

    return XGBRandomForestBackend(**kw)


def _torch_mlp(**kw: Any) -> Backend:
    from lsegeo.emulators.backends.torch_mlp import TorchMLPBackend

    return TorchMLPBackend(**kw)


#: LSE backends by name: ``factory(seed=int, n_jobs=int, **options) -> Backend``.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "xgboost": _xgboost,
    "random_forest": _random_forest,
    "torch_mlp": _torch_mlp,
}


def register_backend(name: str, factory: Callable[..., Backend], *, replace: bool = False) -> None:
    """Add an LSE backend ``factory(seed=..., n_jobs=..., **options)`` under ``name``."""
    if name in BACKENDS and not replace:
        raise ValueError(f"backend {name!r} is already registered; pass replace=True to replace it")
    BACKENDS[name] = factory


def make_backend(name: str, *, seed: int, n_jobs: int, **options: Any) -> Backend:
    """A new (unfitted) backend of the registry."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown LSE backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    return factory(seed=seed, n_jobs=n_jobs, **options)


def _lse() -> type:
    from lsegeo.emulators.lse import LargeSampleEmulator

    return LargeSampleEmulator


def _sse() -> type:
    from lsegeo.emulators.sse import SingleSiteEmulator

    return SingleSiteEmulator


#: Emulator classes by their ``kind`` (resolved lazily, so that this module imports nothing heavy).
EMULATOR_KINDS: dict[str, Callable[[], type]] = {"lse": _lse, "sse": _sse}


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    """Write ``emulator.json`` (with the format tag and version) into ``directory``."""
    from lsegeo import __version__

    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "lsegeo_version": __version__, **meta}
    (Path(directory) / META_FILE).write_text(json.dumps(full, default=_json_default, indent=1))


def read_meta(directory: str | Path) -> dict[str, Any]:
    """Read and check ``emulator.json`` of a saved emulator."""
    path = Path(directory) / META_FILE
    if not path.exists():
        raise FileNotFoundError(f"{directory} is not a saved lsegeo emulator: it has no {META_FILE}")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r} is not {FORMAT!r}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta['format_version']} is newer than this lsegeo reads "
                         f"({FORMAT_VERSION})")
    return meta


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write plain (non-object) arrays to a compressed ``.npz``."""
    for k, a in arrays.items():
        if np.asarray(a).dtype.kind == "O":
            raise TypeError(f"array {k!r} has dtype object, which would need pickle")
    np.savez_compressed(path, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` with ``allow_pickle=False`` into memory."""
    with np.load(path, allow_pickle=False) as z:
        return {k: np.array(z[k]) for k in z.files}


def load(directory: str | Path, n_jobs: int | None = None) -> Emulator:
    """Read a saved emulator of any kind.

    Parameters
    ----------
    directory : path-like
        A directory written by an emulator's ``save``.
    n_jobs : int, optional
        Threads for prediction; default the value it was saved with.
    """
    meta = read_meta(directory)
    try:
        cls = EMULATOR_KINDS[meta["kind"]]()
    except KeyError:
        raise ValueError(f"{directory}: unknown emulator kind {meta.get('kind')!r}; known: "
                         f"{', '.join(EMULATOR_KINDS)}") from None
    return cls.load(directory, n_jobs=n_jobs)


def dir_to_bytes(directory: Path) -> bytes:
    """Zip the files of a directory (recursively, relative names) into bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in sorted(Path(directory).rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(directory).as_posix())
    return buf.getvalue()


def bytes_to_dir(blob: bytes, directory: Path) -> None:
    """Unzip ``blob`` (from :func:`dir_to_bytes`) into ``directory``, refusing unsafe names."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for name in zf.namelist():
            p = Path(name)
            if p.is_absolute() or ".." in p.parts:
                raise ValueError(f"unsafe file name {name!r} in an emulator archive")
        zf.extractall(directory)


def to_bytes(emulator: Emulator) -> bytes:
    """Save ``emulator`` into a temporary directory and return it zipped."""
    with tempfile.TemporaryDirectory(prefix="lsegeo-emulator-") as tmp:
        emulator.save(Path(tmp) / "em")
        return dir_to_bytes(Path(tmp) / "em")


def load_bytes(blob: bytes, n_jobs: int | None = 1) -> Emulator:
    """An emulator from the bytes of its ``to_bytes`` (e.g. on a dask worker).

    Parameters
    ----------
    blob : bytes
    n_jobs : int or None
        Threads for prediction: 1 by default (dask workers are already parallel with each
        other); None keeps the value the emulator was saved with.
    """
    with tempfile.TemporaryDirectory(prefix="lsegeo-emulator-") as tmp:
        bytes_to_dir(bytes(blob), Path(tmp))
        return load(tmp, n_jobs=n_jobs)


class EmulatorCore:
    """What the large-sample and the single-site emulator share: the basins, parameters and
    targets they were fitted on, their skill, and the lookup of basins by gauge id.

    A subclass calls :meth:`_init_core` in its ``__init__``, fills the ``_basins``, ``_params``,
    ``_targets``, ``_senses`` and ``_space`` attributes when it fits or loads, and says with
    :meth:`_is_fitted` whether it has.
    """

    #: completes "basins [...] ..." in the error for an unknown gauge id
    _unknown_basins = "are not known to the emulator"

    def _init_core(self, seed: int, n_jobs: int) -> None:
        self.seed = int(seed)
        self.n_jobs = max(1, int(n_jobs))
        self._basins: list[str] = []
        self._params: list[str] = []
        self._targets: list[str] = []
        self._senses: list[str] = []
        self._space: Any = None
        self._period = ""
        self._skill: dict[str, Any] = {}

    def _is_fitted(self) -> bool:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise RuntimeError("the emulator is not fitted (call fit) or loaded")

    @property
    def basins(self) -> list[str]:
        """Gauge ids of the basins the emulator knows (``basin_idx`` indexes this list)."""
        return list(self._basins)

    @property
    def param_names(self) -> list[str]:
        return list(self._params)

    @property
    def target_names(self) -> list[str]:
        return list(self._targets)

    @property
    def target_senses(self) -> list[str]:
        """``"max"`` or ``"min"`` for each target (empty when unknown)."""
        return list(self._senses)

    @property
    def space(self) -> Any:
        """The parameter space (:class:`~lsegeo.design.ParameterSpace`) of the unit-cube mapping."""
        self._check_fitted()
        return self._space

    @property
    def skill(self) -> dict[str, Any]:
        return self._skill

    def basin_index(self, basins: Any) -> np.ndarray:
        """Indices into :attr:`basins` of gauge ids; unknown ids raise :class:`~lsegeo.errors.UnknownBasinError`."""
        from lsegeo.errors import UnknownBasinError

        pos = {b: i for i, b in enumerate(self._basins)}
        names = [str(b) for b in np.atleast_1d(basins)]
        unknown = [b for b in names if b not in pos]
        if unknown:
            raise UnknownBasinError(f"basins {unknown[:5]} {self._unknown_basins}")
        return np.array([pos[b] for b in names], dtype=np.int64)


def check_rows(basin_idx: Any, u: Any, n_basins: int, n_params: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``predict`` inputs; return ``basin_idx`` as int64 ``(n,)`` and ``u`` as float64 ``(n, p)``."""
    u = np.asarray(u, dtype=np.float64)
    if u.ndim == 1:
        u = u[None, :]
    if u.ndim != 2 or u.shape[1] != n_params:
        raise ValueError(f"u must be (n, {n_params}) parameters in the unit cube, got shape {u.shape}")
    b = np.asarray(basin_idx)
    if b.ndim == 0:
        b = np.full(len(u), int(b))
    if b.shape != (len(u),):
        raise ValueError(f"basin_idx must be ({len(u)},) like the rows of u, got shape {b.shape}")
    if b.size and not np.issubdtype(b.dtype, np.integer):
        raise TypeError(f"basin_idx must be integers (indices into .basins), got dtype {b.dtype}")
    b = b.astype(np.int64, copy=False)
    if b.size and (b.min() < 0 or b.max() >= n_basins):
        raise IndexError(f"basin_idx must lie in [0, {n_basins}), got values from {b.min()} to {b.max()}")
    return b, u
