"""The ``regionalize:`` section: methods, target domains, products and the cross-validation.

Defaults come from :class:`lsegeo.regionalize.settings.RegionalizeSettings` and its parts (a
test checks that the two agree); :meth:`RegionalizeConfig.settings` turns the section into them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lsegeo.config.sections import EnsembleConfig, _names_once, _Section
from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.errors import LsegeoError
from lsegeo.io.urls import Location
from lsegeo.regionalize.settings import (
    DONOR_COMBINE,
    NLDAS_CONUS,
    AmortisedSettings,
    DonorSettings,
    OptimiseSettings,
    RegionalizeSettings,
)

__all__ = ["DomainConfig", "DonorsConfig", "OptimiseConfig", "AmortisedConfig", "CtsmProductConfig",
           "RegionalizeConfig"]

_R = RegionalizeSettings()


class DomainConfig(_Section):
    """One target domain (``docs/domains.md``)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="product name stem: letters, digits, '_', '.', '-'")
    kind: Literal["basins", "table", "grid", "surfdata"]
    basins: Literal["unobserved", "uncalibrated", "observed", "all"] | list[str] = Field(
        default="unobserved", description="kind basins: which basins of the basins store ('uncalibrated': those "
        "without a calibrated set in the store)")
    path: Path | None = Field(default=None, description="kind table: the attribute table; kind surfdata: the CTSM "
                              "surface dataset whose grid and land mask are the domain")
    id_column: str | None = Field(default=None, description="kind table: the column of target ids (default the first)")
    bounds: tuple[float, float, float, float] | None = Field(
        default=None, description="kind grid: west, south, east, north in degrees (default the NLDAS CONUS box)")
    resolution: float | None = Field(default=None, gt=0, le=10, description="kind grid: cell size in degrees")
    attributes: str = Field(default="camels", description="grids: 'camels' (CAMELS attributes rasterized from the "
                            "basin polygons, inverse-distance weighted elsewhere) or a netCDF/zarr dataset with one "
                            "variable per attribute on (lat, lon)")
    land_mask: Path | None = Field(default=None, description="grids: a CTSM surface dataset whose land mask to use")

    @model_validator(mode="after")
    def _needs(self) -> DomainConfig:
        if self.kind in ("table", "surfdata") and self.path is None:
            raise ValueError(f"a {self.kind} domain needs 'path'")
        if self.kind == "grid":
            if self.resolution is None:
                raise ValueError("a grid domain needs 'resolution' (degrees), e.g. 0.125")
            b = self.bounds or NLDAS_CONUS
            if not (b[0] < b[2] and b[1] < b[3] and -90 <= b[1] and b[3] <= 90):
                raise ValueError(f"bounds must be west < east and -90 <= south < north <= 90, got {list(b)}")
        return self


class DonorsConfig(_Section):
    """Donor methods (:class:`lsegeo.regionalize.settings.DonorSettings`)."""

    k: int = Field(default=DonorSettings.k, ge=1, description="donors per target")
    combine: Literal["best_mean", "nearest", "mean_response"] = Field(
        default=DonorSettings.combine, description=f"how donor-similar (only) predicts: {DONOR_COMBINE}")
    near: int = Field(default=DonorSettings.near, ge=0, description="donor-ensemble: spatially nearest donors")
    similar: int = Field(default=DonorSettings.similar, ge=0, description="donor-ensemble: most similar donors")


class OptimiseConfig(_Section):
    """The GA of ``lse-optimise`` (:class:`lsegeo.regionalize.settings.OptimiseSettings`)."""

    pop_size: int = Field(default=OptimiseSettings.pop_size, ge=4)
    generations: int = Field(default=OptimiseSettings.n_gen, ge=1)
    restarts: int = Field(default=OptimiseSettings.n_restarts, ge=1)
    min_distance: float = Field(default=OptimiseSettings.min_distance, ge=0, description="least unit-cube distance "
                                "between the K sets of a target")
    max_rows: int = Field(default=OptimiseSettings.max_rows, ge=1, description="most distinct attribute rows "
                          "optimised; beyond, representatives are (docs/regionalization.md)")
    trust_donors: int = Field(default=OptimiseSettings.trust_donors, ge=0, description="search inside the envelope "
                              "of the calibrated sets of this many nearest and as many most similar basins; 0: the "
                              "whole cube")
    trust_margin: float = Field(default=OptimiseSettings.trust_margin, ge=0, le=1, description="unit-cube margin "
                                "around that envelope")
    seed: int = OptimiseSettings.seed


class AmortisedConfig(_Section):
    """The network of ``lse-amortised`` (:class:`lsegeo.regionalize.settings.AmortisedSettings`)."""

    hidden: list[int] = Field(default_factory=lambda: list(AmortisedSettings.hidden))
    epochs: int = Field(default=AmortisedSettings.epochs, ge=1)
    penalty: float = Field(default=AmortisedSettings.penalty, ge=0, description="weight of the emulators' spread")
    emulators: int = Field(default=AmortisedSettings.n_emulators, ge=1, description="torch_mlp emulators")
    backend_options: dict[str, Any] = Field(default_factory=lambda: dict(AmortisedSettings().backend_options),
                                            description="options of their torch_mlp backend")
    seed: int = AmortisedSettings.seed


class CtsmProductConfig(_Section):
    """CTSM files written beside the maps when the store's model is CTSM (``docs/products.md``)."""

    paramfile: Path | None = Field(default=None, description="the base CTSM parameter file")
    surfdata: str | None = Field(default=None, description="the base surface dataset; for basin domains a template "
                                 "with {basin} may name one per basin; a surfdata domain's copy is made from the "
                                 "domain's own file when this is unset or a template")
    version: str = Field(default="5.3", description="CTSM version or tag of the files' layout")
    distparams: bool = Field(default=False, description="also write a distributed-parameter stream file for grids")


class RegionalizeConfig(_Section):
    """Regionalization and parameter products.

    Defaults: :class:`lsegeo.regionalize.settings.RegionalizeSettings`.
    """

    store: Path | None = Field(default=None, description="calibration (or ensemble) store of the calibrated basins; "
                               "default <work_dir>/calibration_lse.zarr")
    basins_store: Path | None = Field(default=None, description="default <work_dir>/camels_basins.zarr")
    method: str = Field(default=_R.method, description="a regionalization method (lsegeo regionalize --help)")
    objective: str = Field(default=_R.objective, description="score that ranks sets and that the emulator predicts")
    period: str = _R.period
    report_objective: str = Field(default=_R.report_objective, description="score of the products and tables")
    samples: int = Field(default=_R.n_samples, ge=1, description="parameter sets per target (K)")
    emulators: int = Field(default=_R.n_emulators, ge=1, description="emulators fitted with different seeds")
    backend: str = Field(default=EmulatorSettings.backend, description="LSE backend: xgboost, random_forest, "
                         "torch_mlp")
    backend_options: dict[str, Any] = Field(default_factory=dict, description="options of the LSE backend")
    attributes: list[str] | None = Field(default=None, description="basin attributes of the LSE; default the 27 "
                                         "of the study")
    confidence: float = Field(default=_R.confidence, gt=0, lt=1, description="level of the score interval")
    interval_scheme: str | None = Field(default="study", description="fold scheme of the cross-validation whose "
                                        "residuals calibrate the intervals; null: no intervals")
    interval_groups: str | None = Field(default="pur", description="Mondrian intervals, one threshold per PUR "
                                        "region (HUC-02 groups); null: one pooled threshold")
    applicability_quantile: float = Field(default=_R.applicability_quantile, gt=0, lt=1)
    chunk_targets: int = Field(default=_R.chunk_targets, ge=1, description="targets per chunk of work")
    donors: DonorsConfig = Field(default_factory=DonorsConfig)
    optimise: OptimiseConfig = Field(default_factory=OptimiseConfig)
    amortised: AmortisedConfig = Field(default_factory=AmortisedConfig)
    domains: list[DomainConfig] = Field(default_factory=list, description="target domains (docs/domains.md)")
    output: Location | None = Field(default=None, description="products folder, a path or a URL (s3://...); default "
                                    "<work_dir>/products")
    formats: list[Literal["zarr", "netcdf"]] = Field(default_factory=lambda: ["zarr", "netcdf"])
    ctsm: CtsmProductConfig = Field(default_factory=CtsmProductConfig)
    figures: bool = Field(default=True, description="maps of every parameter, score and interval width")
    crossval_schemes: list[str] = Field(default_factory=lambda: ["study", "pub", "pur", "flood_cluster"],
                                        description="fold schemes of `lsegeo crossval`")
    crossval_methods: list[str] | None = Field(default=None, description="methods of `lsegeo crossval`; "
                                               "default all")
    crossval_dir: Path | None = Field(default=None, description="default <work_dir>/crossval")
    overwrite: bool = False

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        from lsegeo.regionalize.methods import METHODS

        try:
            METHODS.check(v)
        except LsegeoError as err:
            raise ValueError(str(err)) from None
        return v

    @field_validator("crossval_methods")
    @classmethod
    def _methods(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for m in _names_once(v, "method", "regionalization methods"):
                cls._method(m)
        return v

    @field_validator("interval_groups")
    @classmethod
    def _groups(cls, v: str | None) -> str | None:
        if v is not None and v != "pur":
            raise ValueError("must be 'pur' (a threshold per PUR region) or null (one pooled threshold)")
        return v

    @field_validator("interval_scheme")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None:
            cls._schemes([v])
        return v

    @field_validator("crossval_schemes")
    @classmethod
    def _schemes(cls, v: list[str]) -> list[str]:
        from lsegeo.regionalize.folds import SPATIAL_FOLD_SCHEMES

        for s in _names_once(v, "fold scheme", "fold schemes"):
            try:
                SPATIAL_FOLD_SCHEMES.check(s)
            except LsegeoError as err:
                raise ValueError(str(err)) from None
        return v

    @field_validator("objective", "report_objective")
    @classmethod
    def _objective(cls, v: str) -> str:
        return EnsembleConfig._objectives([v])[0]

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, v: list[DomainConfig]) -> list[DomainConfig]:
        _names_once([d.name for d in v], "domain name", "distinct names")
        return v

    @model_validator(mode="after")
    def _valid_settings(self) -> RegionalizeConfig:
        self.settings()
        return self

    def settings(self) -> RegionalizeSettings:
        """The section as :class:`~lsegeo.regionalize.settings.RegionalizeSettings`."""
        return RegionalizeSettings(
            method=self.method, objective=self.objective, period=self.period, report_objective=self.report_objective,
            n_samples=self.samples, n_emulators=self.emulators, confidence=self.confidence,
            chunk_targets=self.chunk_targets, applicability_quantile=self.applicability_quantile,
            attributes=None if self.attributes is None else tuple(self.attributes),
            emulator=EmulatorSettings(kind="lse", backend=self.backend, backend_options=dict(self.backend_options)),
            donors=DonorSettings(k=self.donors.k, combine=self.donors.combine, near=self.donors.near,
                                 similar=self.donors.similar),
            optimise=OptimiseSettings(pop_size=self.optimise.pop_size, n_gen=self.optimise.generations,
                                      n_restarts=self.optimise.restarts, min_distance=self.optimise.min_distance,
                                      max_rows=self.optimise.max_rows, trust_donors=self.optimise.trust_donors,
                                      trust_margin=self.optimise.trust_margin, seed=self.optimise.seed),
            amortised=AmortisedSettings(hidden=tuple(self.amortised.hidden), epochs=self.amortised.epochs,
                                        penalty=self.amortised.penalty, n_emulators=self.amortised.emulators,
                                        backend_options=dict(self.amortised.backend_options),
                                        seed=self.amortised.seed))
