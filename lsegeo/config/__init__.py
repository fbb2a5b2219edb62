"""Validated configuration, from YAML files or keyword arguments.

Every section is a pydantic model that forbids unknown keys, so a typo is an error that names
the key, never a silently ignored setting. :func:`load_config` turns validation errors into one
:class:`~lsegeo.errors.ConfigError` whose lines read ``<file>: <dotted.key>: <what is wrong>``.

The sections live in :mod:`lsegeo.config.sections` (ingest to external runs) and
:mod:`lsegeo.config.regionalize` (regionalization and products).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from lsegeo.config.regionalize import RegionalizeConfig
from lsegeo.config.sections import (
    DEFAULT_OBJECTIVES,
    CalibrateConfig,
    ClusterConfig,
    DirectConfig,
    EnsembleConfig,
    ExternalConfig,
    IngestConfig,
    SensitivityConfig,
    _Section,
)
from lsegeo.errors import ConfigError
from lsegeo.io.yaml_files import read_yaml

__all__ = ["ClusterConfig", "IngestConfig", "EnsembleConfig", "CalibrateConfig", "SensitivityConfig", "DirectConfig",
           "ExternalConfig", "RegionalizeConfig", "Config", "DEFAULT_OBJECTIVES",
           "load_config", "validate_config", "apply_overrides"]


class Config(_Section):
    """The whole configuration of an lsegeo job."""

    data_dir: Path | None = Field(default=None, description="input data; default LSEGEO_DATA_DIR or ../shared/data")
    work_dir: Path | None = Field(default=None, description="outputs; default LSEGEO_WORK_DIR or ./work")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    calibrate: CalibrateConfig = Field(default_factory=CalibrateConfig)
    sensitivity: SensitivityConfig = Field(default_factory=SensitivityConfig)
    direct: DirectConfig = Field(default_factory=DirectConfig)
    external: ExternalConfig = Field(default_factory=ExternalConfig)
    regionalize: RegionalizeConfig = Field(default_factory=RegionalizeConfig)
    storage_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="fsspec options per protocol for stores and products at URLs, e.g. "
        "{s3: {endpoint_url: ...}}; credentials come from the environment (docs/object_storage.md)")


def _format(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see `lsegeo --help` and docs/configuration.md)"
        show_input = e["type"] != "extra_forbidden" and not isinstance(e.get("input"), dict)
        got = f" (got {e['input']!r})" if show_input else ""
        lines.append(f"{source}: {key}: {msg}{got}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def validate_config(raw: dict[str, Any] | None, source: str = "<config>") -> Config:
    """Validate a configuration mapping; raise :class:`ConfigError` pointing at bad keys.

    A ``storage_options`` section is applied to fsspec's configuration of this process (and of
    the local worker processes started after it) by :func:`lsegeo.io.urls.configure_storage`.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format(err, source)) from None
    if cfg.storage_options:  # fsspec's options for URLs: this process and the workers it starts later
        from lsegeo.io.urls import configure_storage

        configure_storage(cfg.storage_options)
    return cfg


def apply_overrides(cfg: Config, overrides: dict[str, Any], source: str = "command line") -> Config:
    """Return a copy of ``cfg`` with some keys replaced, validated again.

    Parameters
    ----------
    cfg : Config
        The configuration (left unchanged).
    overrides : dict
        Dotted keys (``"cluster.n_workers"``, ``"work_dir"``) to new values; ``None`` values are
        skipped, so unset command-line options keep the configuration's values.
    source : str
        Named in the error messages.

    Raises
    ------
    ConfigError
        A key is unknown or a value is invalid; the message names ``source`` and the key.
    """
    raw = cfg.model_dump(mode="json", exclude_unset=True)
    for key, value in overrides.items():
        if value is None:
            continue
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = [str(v) for v in value] if isinstance(value, (list, tuple)) else \
            (str(value) if isinstance(value, Path) else value)
    return validate_config(raw, source)


def load_config(path: str | Path | None) -> Config:
    """Read and validate a YAML configuration file (``None`` gives the defaults).

    Parameters
    ----------
    path : path-like or None
        The YAML file.

    Raises
    ------
    ConfigError
        The file is absent or not YAML; a key is given twice in one mapping (a key repeated in
        a section, or a whole section given twice: the message names the dotted key and both
        line numbers, since plain YAML would silently keep the last one); or a key or value is
        invalid (:func:`validate_config`).
    """
    if path is None:
        return Config()
    return validate_config(read_yaml(path), str(path))
