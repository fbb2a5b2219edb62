"""Validated configuration, from YAML files or keyword arguments.

Every section is a pydantic model that forbids unknown keys, so a typo is an error that names
the key, never a silently ignored setting. :func:`load_config` turns validation errors into one
:class:`~lsegeo.errors.ConfigError` whose lines read ``<file>: <dotted.key>: <what is wrong>``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lsegeo.errors import ConfigError

__all__ = ["ClusterConfig", "IngestConfig", "EnsembleConfig", "CalibrateConfig", "Config", "load_config",
           "validate_config"]

DEFAULT_OBJECTIVES = ["kgeprime", "nkgeprime", "kge", "nse", "lognse", "mae", "rmse", "monthly_mean_maxabs"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ClusterConfig(_Section):
    """Where the parallel work runs.

    ``local`` starts a :class:`distributed.LocalCluster` of worker processes (the default);
    ``address`` connects to a running scheduler; ``slurm`` and ``pbs`` start dask-jobqueue
    clusters (extra ``hpc``) with ``options`` passed to their constructors.
    """

    kind: Literal["local", "address", "slurm", "pbs"] = "local"
    n_workers: int | None = Field(default=None, ge=1, description="worker processes (local) or jobs")
    threads_per_worker: int = Field(default=1, ge=1)
    memory_limit: str = "auto"
    address: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _address_needed(self) -> "ClusterConfig":
        if self.kind == "address" and not self.address:
            raise ValueError("kind 'address' needs 'address', e.g. tcp://scheduler:8786")
        return self


class IngestConfig(_Section):
    """What ``lsegeo ingest camels`` reads and writes."""

    store: Path | None = Field(default=None, description="output store; default <work_dir>/camels_basins.zarr")
    basins: list[str] | None = Field(default=None, description="gauge ids; default every gauge with forcing")
    start: dt.date = dt.date(1980, 1, 1)
    end: dt.date = dt.date(2014, 12, 31)
    chunk_basins: int = Field(default=64, ge=1, le=4096, description="basins per zarr chunk")
    overwrite: bool = False

    @field_validator("basins", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        if v is None or not isinstance(v, list):
            return v
        bad = [b for b in v if not (isinstance(b, str) and len(b) == 8 and b.isdigit())]
        if bad:
            raise ValueError(f"gauge ids must be 8-digit strings; quote them in YAML ('01013500'), got {bad[:3]}")
        return v

    @model_validator(mode="after")
    def _period(self) -> "IngestConfig":
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class EnsembleConfig(_Section):
    """What ``lsegeo ensemble`` runs: a design of members over basins and periods."""

    basins_store: Path | None = Field(default=None, description="default <work_dir>/camels_basins.zarr")
    store: Path | None = Field(default=None, description="default <work_dir>/ensemble_<model>.zarr")
    model: str = "hbv"
    basins: Literal["observed", "all"] | list[str] = Field(
        default="observed", description="'observed' (basins with streamflow), 'all', or a list of gauge ids")
    n_members: int = Field(default=200, ge=1, description="members per basin, the default member included")
    seed: int = 20250701
    parameters: list[str] | None = Field(default=None, description="parameters to sample; others at default")
    objectives: list[str] = Field(default_factory=lambda: list(DEFAULT_OBJECTIVES))
    periods: dict[str, tuple[dt.date, dt.date]] = Field(
        default_factory=lambda: {"calibration": (dt.date(1998, 10, 1), dt.date(2008, 9, 30)),
                                 "test": (dt.date(1989, 10, 1), dt.date(1999, 9, 30))})
    warmup_days: int = Field(default=365, ge=0)
    keep_series: bool = False
    chunk_basins: int = Field(default=8, ge=1, le=4096)
    overwrite: bool = False

    @field_validator("basins", mode="before")
    @classmethod
    def _ensemble_ids(cls, v: Any) -> Any:
        return IngestConfig._ids(v) if isinstance(v, list) else v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        from lsegeo.models.protocol import available_models

        if v not in available_models():
            raise ValueError(f"unknown model {v!r}; registered: {', '.join(available_models())}")
        return v

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        from lsegeo.metrics.scores import OBJECTIVES

        bad = [o for o in v if o not in OBJECTIVES]
        if bad:
            raise ValueError(f"unknown objective(s) {bad}; known: {', '.join(sorted(OBJECTIVES))}")
        if not v or len(set(v)) != len(v):
            raise ValueError("objectives must be a non-empty list without repeats")
        return v

    @field_validator("periods")
    @classmethod
    def _periods(cls, v: dict[str, tuple[dt.date, dt.date]]) -> dict[str, tuple[dt.date, dt.date]]:
        if not v:
            raise ValueError("at least one period is needed")
        for name, (start, end) in v.items():
            if end < start:
                raise ValueError(f"period {name!r}: end {end} is before start {start}")
        return v


class CalibrateConfig(_Section):
    """What ``lsegeo calibrate`` does: the iterative emulator-based calibration loop."""

    ensemble_store: Path | None = Field(default=None, description="iteration 0 (from `lsegeo ensemble`); "
                                        "default the ensemble section's store")
    store: Path | None = Field(default=None, description="default <work_dir>/calibration_<emulator>.zarr")
    emulator: Literal["lse", "sse"] = "lse"
    backend: str = Field(default="xgboost", description="LSE backend: xgboost, random_forest or torch_mlp")
    objectives: list[str] = Field(default_factory=lambda: ["nkgeprime"],
                                  description="one (GA) or two (NSGA-II) emulator targets")
    period: str = "calibration"
    attributes: list[str] | None = Field(default=None, description="basin attributes of the LSE; default the "
                                         "27 of Tang et al. (2025)")
    parameters: list[str] | None = Field(default=None, description="parameters to calibrate; others stay "
                                         "at their defaults")
    screening_share: float | None = Field(default=None, gt=0, le=1, description="calibrate only the parameters "
                                          "carrying this share of the summed first-order Sobol sensitivity "
                                          "(computed on the LSE); the study used 0.85")
    screening_by: Literal["cluster", "basin", "all"] = "cluster"
    iterations: int = Field(default=4, ge=1, description="iterations after iteration 0")
    proposals: int = Field(default=50, ge=1, description="new members per basin and iteration")
    pop_size: int = Field(default=100, ge=4)
    generations: int = Field(default=100, ge=1)
    restarts: int = Field(default=3, ge=1)
    min_distance: float = Field(default=0.1, ge=0, description="least distance between proposals, and between a "
                                "proposal and a simulated member (unit cube)")
    local_share: float = Field(default=0.8, ge=0, le=1, description="share of the proposals from the "
                               "emulator-screened neighbourhood search around each basin's best simulated members; "
                               "0 is the study's scheme (all from the GA / NSGA-II)")
    local_anchors: int = Field(default=10, ge=1, description="best simulated members per basin that the "
                               "neighbourhood search perturbs")
    local_candidates: int = Field(default=5000, ge=1, description="perturbations per basin screened by the emulator")
    local_radius: float = Field(default=0.2, gt=0, le=1, description="standard deviation of a perturbation, "
                                "unit cube")
    cv_folds: int = Field(default=5, ge=0, description="folds of the emulator skill cross-validation (0: none)")
    seed: int = 20250702
    overwrite: bool = False

    @field_validator("objectives")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        if len(v) not in (1, 2):
            raise ValueError(f"one objective (GA) or two (NSGA-II) are supported, got {len(v)}")
        return EnsembleConfig._objectives(v)

    @model_validator(mode="after")
    def _enough_candidates(self) -> "CalibrateConfig":
        n_local = round(self.local_share * self.proposals)
        if n_local > self.local_candidates:
            raise ValueError(f"local_candidates ({self.local_candidates}) must be at least the {n_local} "
                             f"proposals per basin that the neighbourhood search makes (local_share x proposals)")
        if self.proposals - n_local > self.pop_size * self.restarts:
            raise ValueError(f"the GA's {self.proposals - n_local} proposals per basin need pop_size x restarts "
                             f"({self.pop_size} x {self.restarts}) candidates at least")
        return self


class Config(_Section):
    """The whole configuration of an lsegeo job."""

    data_dir: Path | None = Field(default=None, description="input data; default LSEGEO_DATA_DIR or ../shared/data")
    work_dir: Path | None = Field(default=None, description="outputs; default LSEGEO_WORK_DIR or ./work")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    calibrate: CalibrateConfig = Field(default_factory=CalibrateConfig)


def _format(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see `lsegeo --help` and docs/configuration.md)"
        got = f" (got {e['input']!r})" if e["type"] != "extra_forbidden" and not isinstance(e.get("input"), dict) else ""
        lines.append(f"{source}: {key}: {msg}{got}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def validate_config(raw: dict[str, Any] | None, source: str = "<config>") -> Config:
    """Validate a configuration mapping; raise :class:`ConfigError` pointing at bad keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format(err, source)) from None


def load_config(path: str | Path | None) -> Config:
    """Read and validate a YAML configuration file (``None`` gives the defaults)."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return validate_config(raw, str(path))
