"""The sections of the configuration of the calibration half (cluster to external runs).

Every section is a pydantic model that forbids unknown keys (:class:`_Section`), so a typo is an
error that names the key. The whole configuration, and its loading, is :mod:`lsegeo.config`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from lsegeo.calibration.direct_settings import DirectSettings
from lsegeo.calibration.settings import CalibrationSettings
from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.ensembles.settings import EnsembleSettings
from lsegeo.errors import LsegeoError, UnknownNameError
from lsegeo.ingest.settings import IngestSettings
from lsegeo.io.urls import Location
from lsegeo.models.external_settings import ExternalModelSettings
from lsegeo.optimise.settings import ProposalSettings
from lsegeo.parallel import CLUSTER_KINDS, ClusterSettings
from lsegeo.periods import DEFAULT_PERIODS
from lsegeo.sensitivity.settings import SensitivitySettings

__all__ = ["ClusterConfig", "IngestConfig", "EnsembleConfig", "CalibrateConfig", "SensitivityConfig", "DirectConfig",
           "ExternalConfig"]

DEFAULT_OBJECTIVES = ["kgeprime", "nkgeprime", "kge", "nse", "lognse", "mae", "rmse", "monthly_mean_maxabs"]


def _names_once(v: list[Any], what: str, example: str) -> list[Any]:
    """Refuse an empty list (it would select nothing) and a name listed twice; return ``v``."""
    if not v:
        raise ValueError(f"an empty list selects no {what}; list {example}, or leave the key out for its default")
    repeated = sorted({str(x) for x in v if v.count(x) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} listed more than once; list each {what} once")
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ClusterConfig(_Section):
    """Where the parallel work runs (defaults: :class:`lsegeo.parallel.ClusterSettings`).

    ``local`` starts a :class:`distributed.LocalCluster` of worker processes (the default);
    ``address`` connects to a running scheduler; ``slurm`` and ``pbs`` start dask-jobqueue
    clusters (extra ``hpc``) with ``options`` passed to their constructors. ``kind`` is any name
    of :data:`lsegeo.parallel.CLUSTER_KINDS`.
    """

    kind: str = Field(default=ClusterSettings.kind, description="a name of lsegeo.parallel.CLUSTER_KINDS")
    n_workers: int | None = Field(default=ClusterSettings.n_workers, ge=1,
                                  description="worker processes (local) or jobs")
    threads_per_worker: int = Field(default=ClusterSettings.threads_per_worker, ge=1)
    memory_limit: str = ClusterSettings.memory_limit
    address: str | None = ClusterSettings.address
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        try:
            return CLUSTER_KINDS.check(v)
        except UnknownNameError as err:  # pydantic reports ValueErrors with the key
            raise ValueError(str(err)) from None

    def settings(self) -> ClusterSettings:
        """The section as the settings that :func:`lsegeo.parallel.dask_client` takes."""
        return ClusterSettings(**self.model_dump())

    @model_validator(mode="after")
    def _address_needed(self) -> ClusterConfig:
        if self.kind == "address" and not self.address:
            raise ValueError("kind 'address' needs 'address', e.g. tcp://scheduler:8786")
        return self


class IngestConfig(_Section):
    """What ``lsegeo ingest camels`` reads and writes (defaults: :class:`lsegeo.ingest.settings.IngestSettings`)."""

    store: Location | None = Field(default=None, description="output store, a path or a URL (s3://...); default "
                                   "<work_dir>/camels_basins.zarr")
    basins: list[str] | None = Field(default=None, description="gauge ids; default every gauge with forcing")
    start: dt.date = IngestSettings.start
    end: dt.date = IngestSettings.end
    chunk_basins: int = Field(default=IngestSettings.chunk_basins, ge=1, le=4096, description="basins per zarr chunk")
    area_tolerance: float = Field(default=IngestSettings.area_tolerance, gt=0, le=1, description="area mismatch")
    overwrite: bool = False

    @field_validator("basins", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        if v is None or not isinstance(v, list):
            return v
        bad = [b for b in v if not (isinstance(b, str) and len(b) == 8 and b.isdigit())]
        if bad:
            raise ValueError(f"gauge ids must be 8-digit strings; quote them in YAML ('01013500'), got {bad[:3]}")
        return _names_once(v, "basin", "gauge ids")

    @model_validator(mode="after")
    def _period(self) -> IngestConfig:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


def _check_overlap(periods: dict[str, tuple[dt.date, dt.date]], allow_overlap: bool) -> None:
    """Refuse periods that share days unless ``allow_overlap`` (:func:`lsegeo.periods.check_overlap`)."""
    from lsegeo.periods import Period, check_overlap

    try:
        check_overlap([Period(n, a, b) for n, (a, b) in periods.items()], allow_overlap)
    except ValueError as err:
        raise ValueError(f"periods: {err}") from None


class EnsembleConfig(_Section):
    """What ``lsegeo ensemble`` runs: a design of members over basins and periods.

    Defaults: :class:`lsegeo.ensembles.settings.EnsembleSettings` and
    :data:`lsegeo.periods.DEFAULT_PERIODS`.
    """

    basins_store: Location | None = Field(default=None, description="a path or a URL; default "
                                          "<work_dir>/camels_basins.zarr")
    store: Location | None = Field(default=None, description="a path or a URL (s3://...); default "
                                   "<work_dir>/ensemble_<model>.zarr")
    model: str = EnsembleSettings.model
    model_options: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the model adapter (ctsm: version, parameters, "
        "bounds), checked by building it")
    basins: Literal["observed", "all"] | list[str] = Field(
        default=EnsembleSettings.basins,
        description="'observed' (basins with streamflow), 'all', or a list of gauge ids")
    n_members: int = Field(default=EnsembleSettings.n_members, ge=1,
                           description="members per basin, the default member included")
    seed: int = EnsembleSettings.seed
    parameters: list[str] | None = Field(default=None, description="parameters to sample; others at default")
    objectives: list[str] = Field(default_factory=lambda: list(DEFAULT_OBJECTIVES))
    periods: dict[str, tuple[dt.date, dt.date]] = Field(
        default_factory=lambda: {p.name: (p.start, p.end) for p in DEFAULT_PERIODS})
    warmup_days: int = Field(default=EnsembleSettings.warmup_days, ge=0)
    keep_series: bool = EnsembleSettings.keep_series
    chunk_basins: int = Field(default=EnsembleSettings.chunk_basins, ge=1, le=4096)
    min_coverage: float = Field(default=EnsembleSettings.min_coverage, ge=0, le=1, description="least share of "
                                "a period's days with an observation for a basin to be scored on it (NaN below)")
    allow_overlap: bool = Field(default=EnsembleSettings.allow_overlap, description="accept periods that share "
                                "days (refused by default: the test period would not be independent)")
    overwrite: bool = False

    @field_validator("basins", mode="before")
    @classmethod
    def _ensemble_ids(cls, v: Any) -> Any:
        return IngestConfig._ids(v) if isinstance(v, list) else v

    @field_validator("parameters")
    @classmethod
    def _ensemble_parameters(cls, v: list[str] | None) -> list[str] | None:
        return v if v is None else _names_once(v, "parameter", "parameter names of the model")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        from lsegeo.models.registry import MODELS

        if v not in MODELS:
            raise ValueError(f"unknown model {v!r}; registered: {', '.join(MODELS.names())}")
        return v

    @field_validator("model_options")
    @classmethod
    def _model_options(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from lsegeo.models.registry import get_model

        model = info.data.get("model")
        if v and model is not None:  # an unknown model is reported on its own key
            try:
                get_model(model, **v)
            except (TypeError, ValueError, KeyError, LsegeoError) as err:
                text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
                raise ValueError(f"not accepted by model {model!r}: {text}") from None
        return v

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        from lsegeo.metrics.objectives import OBJECTIVES

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

    @model_validator(mode="after")
    def _separate_periods(self) -> EnsembleConfig:
        _check_overlap(self.periods, self.allow_overlap)
        return self


class CalibrateConfig(_Section):
    """What ``lsegeo calibrate`` does: the iterative emulator-based calibration loop."""

    ensemble_store: Location | None = Field(default=None, description="iteration 0 (from `lsegeo ensemble`), a path "
                                            "or a URL (s3://...); default the ensemble section's store")
    store: Location | None = Field(default=None, description="a path or a URL (s3://...); default "
                                   "<work_dir>/calibration_<emulator>.zarr")
    emulator: str = Field(default=EmulatorSettings.kind, description="lse (one model for all basins) or sse "
                          "(one per basin): a name of lsegeo.emulators.registry.EMULATORS")
    backend: str = Field(default=EmulatorSettings.backend, description="LSE backend: xgboost, random_forest or "
                         "torch_mlp (a name of lsegeo.emulators.registry.BACKENDS)")
    backend_options: dict[str, Any] | None = Field(default=None, description="options of the LSE backend, e.g. "
                                                   "{n_estimators: 200}; default the loop's "
                                                   "(lsegeo.emulators.settings.LOOP_BACKEND_OPTIONS: for xgboost 150 "
                                                   "trees of depth 10, learning rate 0.2); {} the backend's own")
    objectives: list[str] = Field(default_factory=lambda: list(CalibrationSettings.objectives),
                                  description="one (GA) or two (NSGA-II) emulator targets")
    period: str = CalibrationSettings.period
    attributes: list[str] | None = Field(default=None, description="basin attributes of the LSE; default the "
                                         "27 of Tang et al. (2025)")
    parameters: list[str] | None = Field(default=None, description="parameters to calibrate; others stay "
                                         "at their defaults")
    screening_share: float | None = Field(default=None, gt=0, le=1, description="calibrate only the parameters "
                                          "carrying this share of the summed first-order Sobol sensitivity "
                                          "(computed on the LSE); the study used 0.85")
    screening_by: Literal["cluster", "basin", "all"] = CalibrationSettings.screening_by
    iterations: int = Field(default=CalibrationSettings.iterations, ge=1, description="iterations after iteration 0")
    proposals: int = Field(default=ProposalSettings.n_proposals, ge=1,
                           description="new members per basin and iteration")
    pop_size: int = Field(default=ProposalSettings.pop_size, ge=4)
    generations: int = Field(default=ProposalSettings.n_gen, ge=1)
    restarts: int = Field(default=ProposalSettings.n_restarts, ge=1)
    min_distance: float = Field(default=ProposalSettings.min_distance, ge=0, description="least distance between "
                                "proposals, and between a proposal and a simulated member (unit cube)")
    local_share: float = Field(default=ProposalSettings.local_share, ge=0, le=1, description="share of the "
                               "proposals from the emulator-screened neighbourhood search around each basin's best "
                               "simulated members; 0 is the study's scheme (all from the GA / NSGA-II)")
    local_anchors: int = Field(default=ProposalSettings.local_anchors, ge=1, description="best simulated members "
                               "per basin that the neighbourhood search perturbs")
    local_candidates: int = Field(default=ProposalSettings.local_candidates, ge=1,
                                  description="perturbations per basin screened by the emulator")
    local_radius: float = Field(default=ProposalSettings.local_radius, gt=0, le=1, description="standard "
                                "deviation of a perturbation, unit cube")
    cv_folds: int = Field(default=EmulatorSettings.cv_folds, ge=0, description="folds of the emulator skill "
                          "cross-validation (0: none)")
    seed: int = ProposalSettings.seed
    overwrite: bool = False

    @field_validator("cv_folds")
    @classmethod
    def _cv_folds(cls, v: int) -> int:
        if v == 1:  # the rule of EmulatorSettings, checked here so that the key is named
            raise ValueError("must be 0 (no cross-validation) or at least 2 folds, got 1")
        return v

    @field_validator("emulator", "backend")
    @classmethod
    def _emulator_names(cls, v: str, info: Any) -> str:
        try:  # EmulatorSettings checks the names against the emulator registries, importing no entry
            EmulatorSettings(**{"kind" if info.field_name == "emulator" else "backend": v})
        except UnknownNameError as err:  # pydantic reports ValueErrors with the key
            raise ValueError(str(err)) from None
        return v

    @field_validator("parameters", "attributes")
    @classmethod
    def _calibrate_names(cls, v: list[str] | None, info: Any) -> list[str] | None:
        what = "parameter" if info.field_name == "parameters" else "attribute"
        return v if v is None else _names_once(v, what, f"{what} names")

    @field_validator("objectives")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        if len(v) not in (1, 2):
            raise ValueError(f"one objective (GA) or two (NSGA-II) are supported, got {len(v)}")
        return EnsembleConfig._objectives(v)

    @model_validator(mode="after")
    def _enough_candidates(self) -> CalibrateConfig:
        n_local = round(self.local_share * self.proposals)
        if n_local > self.local_candidates:
            raise ValueError(f"local_candidates ({self.local_candidates}) must be at least the {n_local} "
                             f"proposals per basin that the neighbourhood search makes (local_share x proposals)")
        if self.proposals - n_local > self.pop_size * self.restarts:
            raise ValueError(f"the GA's {self.proposals - n_local} proposals per basin need pop_size x restarts "
                             f"({self.pop_size} x {self.restarts}) candidates at least")
        return self


class SensitivityConfig(_Section):
    """What ``lsegeo sensitivity`` does (defaults: :class:`lsegeo.sensitivity.settings.SensitivitySettings`).

    The command's options override these keys. The emulator analysed is that of the ``calibrate``
    section's calibration.
    """

    store: Path | None = Field(default=None, description="output store; default <work_dir>/sensitivity_lse.zarr")
    iteration: int | None = Field(default=None, ge=1, description="calibration iteration whose saved emulator is "
                                  "analysed; default the latest completed one (or an LSE fitted on iteration 0)")
    n_base: int = Field(default=SensitivitySettings.n_base, ge=2, description="base sample of the Saltelli design, "
                        "a power of 2: n_base x (D + 2) emulator evaluations per basin")
    num_resamples: int = Field(default=SensitivitySettings.num_resamples, ge=0,
                               description="bootstrap resamples of the confidence intervals")
    seed: int | None = Field(default=None, description="default calibrate.seed + iteration (the calibration's "
                             "own screening)")
    target: str | None = Field(default=None, description="emulator target; default the first of "
                               "calibrate.objectives")
    figures: Path | None = Field(default=None, description="directory of the figures; none when unset")
    maps: int = Field(default=SensitivitySettings.n_maps, ge=0, description="parameters mapped with figures")
    check: int = Field(default=SensitivitySettings.check, ge=0, description="basins whose S1 is also estimated "
                       "from the iteration-0 members (0: no check)")
    check_estimator: str = Field(default=SensitivitySettings.check_estimator,
                                 description="given-data estimator of the check: rbd_fast or binned")
    share: float | None = Field(default=SensitivitySettings.share, gt=0, le=1, description="print the parameters "
                                "carrying this share of the summed S1 per cluster (the study: 0.85)")
    overwrite: bool = False

    @field_validator("n_base")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"must be a power of 2 (the Sobol' sequence is balanced only then), got {v}")
        return v

    @field_validator("check_estimator")
    @classmethod
    def _estimator(cls, v: str) -> str:
        from lsegeo.sensitivity.given_data import ESTIMATORS

        try:
            return ESTIMATORS.check(v)
        except UnknownNameError as err:  # pydantic reports ValueErrors with the key
            raise ValueError(str(err)) from None


class DirectConfig(_Section):
    """Direct calibration by DDS on the model itself.

    Defaults: :class:`lsegeo.calibration.direct_settings.DirectSettings`.
    """

    basins_store: Path | None = Field(default=None, description="default <work_dir>/camels_basins.zarr")
    store: Path | None = Field(default=None, description="default <work_dir>/direct_<model>.zarr")
    basins: Literal["observed", "all"] | list[str] = Field(
        default="observed", description="'observed' (basins with streamflow), 'all', or a list of gauge ids")
    model: str = DirectSettings.model
    objective: str = Field(default=DirectSettings.objective, description="the objective DDS optimises")
    period: str = Field(default=DirectSettings.period, description="the period calibrated on")
    periods: dict[str, tuple[dt.date, dt.date]] = Field(
        default_factory=lambda: {p.name: (p.start, p.end) for p in DirectSettings.periods})
    warmup_days: int = Field(default=DirectSettings.warmup_days, ge=0)
    budget: int = Field(default=DirectSettings.budget, ge=1, description="model runs per basin, the default "
                        "set included")
    chains: int = Field(default=DirectSettings.chains, ge=1, description="DDS chains sharing the budget")
    r: float = Field(default=DirectSettings.r, gt=0, le=1, description="DDS perturbation size (unit cube)")
    seed: int = DirectSettings.seed
    parameters: list[str] | None = Field(default=None, description="parameters to calibrate; others at default")
    checkpoints: list[int] = Field(default_factory=lambda: list(DirectSettings.checkpoints),
                                   description="run numbers at which the best set so far is also scored")
    chunk_basins: int = Field(default=DirectSettings.chunk_basins, ge=1, le=4096, description="basins per dask task")
    min_coverage: float = Field(default=DirectSettings.min_coverage, ge=0, le=1, description="least share of a "
                                "period's days with an observation for a basin to be calibrated or scored on it")
    allow_overlap: bool = Field(default=DirectSettings.allow_overlap, description="accept periods that share days")
    overwrite: bool = False

    @field_validator("basins", mode="before")
    @classmethod
    def _direct_ids(cls, v: Any) -> Any:
        return IngestConfig._ids(v) if isinstance(v, list) else v

    @field_validator("parameters")
    @classmethod
    def _direct_parameters(cls, v: list[str] | None) -> list[str] | None:
        return v if v is None else _names_once(v, "parameter", "parameter names of the model")

    @field_validator("model")
    @classmethod
    def _direct_model(cls, v: str) -> str:
        return EnsembleConfig._model(v)

    @field_validator("objective")
    @classmethod
    def _direct_objective(cls, v: str) -> str:
        return EnsembleConfig._objectives([v])[0]

    @field_validator("periods")
    @classmethod
    def _direct_periods(cls, v: dict[str, tuple[dt.date, dt.date]]) -> dict[str, tuple[dt.date, dt.date]]:
        return EnsembleConfig._periods(v)

    @model_validator(mode="after")
    def _valid_settings(self) -> DirectConfig:
        _check_overlap(self.periods, self.allow_overlap)
        self.settings()  # checkpoints within the budget, and the rest
        return self

    def settings(self) -> DirectSettings:
        """The section as the settings that :func:`lsegeo.calibration.direct.calibrate_direct` takes."""
        from lsegeo.periods import Period

        return DirectSettings(
            model=self.model, objective=self.objective, period=self.period,
            periods=tuple(Period(n, a, b) for n, (a, b) in self.periods.items()), warmup_days=self.warmup_days,
            budget=self.budget, chains=self.chains, r=self.r, seed=self.seed,
            parameters=None if self.parameters is None else tuple(self.parameters),
            checkpoints=tuple(self.checkpoints), chunk_basins=self.chunk_basins, min_coverage=self.min_coverage,
            allow_overlap=self.allow_overlap)


class ExternalConfig(_Section):
    """How ``lsegeo launch`` runs an ensemble store's pending members as external jobs (CTSM, any executable).

    Defaults: :class:`lsegeo.models.external_settings.ExternalModelSettings`. An empty command is
    refused only by ``lsegeo launch`` (:func:`lsegeo.workflows.launch.check_launch_settings`).
    """

    store: Path | None = Field(default=None, description="ensemble store whose pending members run; default "
                               "the ensemble section's store")
    command: tuple[str, ...] | str = Field(default=ExternalModelSettings.command, description="command template: "
                                           "a list of arguments with {placeholders}, run without a shell")
    work_root: str = Field(default=ExternalModelSettings.work_root, description="one folder per member below it")
    timeout_s: float = Field(default=ExternalModelSettings.timeout_s, gt=0, description="seconds a member's "
                             "command may run before it is killed and the member fails")
    log_tail_lines: int = Field(default=ExternalModelSettings.log_tail_lines, ge=0,
                                description="last lines of a failed command's output kept in the store")
    history_glob: str = Field(default=ExternalModelSettings.history_glob,
                              description="the member's daily history files, relative to its folder")
    runoff_variable: str = Field(default=ExternalModelSettings.runoff_variable, min_length=1,
                                 description="runoff variable of the history files, in mm/s")
    case_name: str = Field(default=ExternalModelSettings.case_name, min_length=1,
                           description="template of the {case} placeholder")
    inputs_writer: str = Field(default=ExternalModelSettings.inputs_writer, description="'module:function' that "
                               "writes a member's inputs into its folder")
    writer_options: dict[str, Any] = Field(default_factory=lambda: ExternalModelSettings().writer_options,
                                           description="keyword arguments of the inputs writer")

    @field_validator("command", "case_name", "history_glob", "inputs_writer")
    @classmethod
    def _external_names(cls, v: Any, info: Any) -> Any:
        import string

        from lsegeo.models.external import template_fields

        try:  # unbalanced quotes, a bad {placeholder}
            _ = template_fields(v) if info.field_name == "command" and v else None
            _ = list(string.Formatter().parse(v)) if info.field_name == "case_name" else None
        except ValueError as err:
            raise ValueError(f"not a valid template: {err}") from None
        if info.field_name == "history_glob" and (not v or Path(v).is_absolute()):
            raise ValueError(f"must be a glob relative to the member folder, e.g. {ExternalModelSettings.history_glob}")
        if info.field_name == "inputs_writer" and not all(v.partition(":")[::2]):
            raise ValueError("must be 'module:function', e.g. 'lsegeo.models.ctsm.launch:write_case_inputs'")
        return v

    def settings(self) -> ExternalModelSettings:
        """The section as the settings that :func:`lsegeo.ensembles.external.run_external_ensemble` takes."""
        return ExternalModelSettings(**self.model_dump(exclude={"store"}))
