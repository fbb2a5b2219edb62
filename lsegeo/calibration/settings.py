"""Settings of the emulator calibration loop: the one place that holds their defaults.

:class:`CalibrationSettings` is what :func:`lsegeo.calibration.loop.run_calibration` runs with.
It owns the loop's own settings (targets, period, attributes, free parameters, screening,
iterations) and holds the settings of the two steps it repeats, each owned by its package:
the emulator fit (:class:`lsegeo.emulators.settings.EmulatorSettings`) and the proposal step
(:class:`lsegeo.optimise.settings.ProposalSettings`). The ``calibrate`` section of the
configuration (:class:`lsegeo.config.CalibrateConfig`) takes its defaults from these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.optimise.settings import ProposalSettings

__all__ = ["CalibrationSettings", "SCREENING_BY"]

#: how the screening groups basins: per flood-generation cluster, per basin, or all together
SCREENING_BY = ("cluster", "basin", "all")


@dataclass(frozen=True)
class CalibrationSettings:
    """Settings of the iterative emulator-based calibration (Tang, Wood & Swenson 2025).

    Attributes
    ----------
    objectives : tuple of str
        The emulator's targets: one (GA) or two (NSGA-II) objective names of the ensemble. The
        first also chooses each basin's best simulated member.
    period : str
        The period whose scores the emulator learns.
    attributes : tuple of str or None
        Basin attributes of the large-sample emulator; None: the 27 of the study
        (:data:`lsegeo.emulators.STUDY_ATTRIBUTES`).
    parameters : tuple of str or None
        Parameters calibrated; the others stay at their defaults. None: all.
    screening_share : float or None
        When set, only the parameters carrying this share of the summed first-order Sobol'
        sensitivity on the emulator are optimised (0.85 in the study); None: no screening.
    screening_by : str
        ``"cluster"`` (per flood-generation cluster, as the study), ``"basin"`` or ``"all"``.
    iterations : int
        Iterations after iteration 0.
    emulator : EmulatorSettings
        The emulator fitted in every iteration; iteration ``k`` uses seed ``emulator.seed + k``.
    proposal : ProposalSettings
        The proposal step; iteration ``k`` uses seed ``proposal.seed + 1000 k``.

    Raises
    ------
    ValueError
        No or more than two objectives, ``iterations`` below 1, ``screening_share`` outside
        (0, 1], or an unknown ``screening_by``.
    """

    objectives: tuple[str, ...] = ("nkgeprime",)
    period: str = "calibration"
    attributes: tuple[str, ...] | None = None
    parameters: tuple[str, ...] | None = None
    screening_share: float | None = None
    screening_by: str = "cluster"
    iterations: int = 4
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)
    proposal: ProposalSettings = field(default_factory=ProposalSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        for name in ("attributes", "parameters"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.objectives) not in (1, 2):
            raise ValueError(f"one objective (GA) or two (NSGA-II) are supported, got {len(self.objectives)}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if self.screening_share is not None and not 0 < self.screening_share <= 1:
            raise ValueError(f"screening_share must be in (0, 1], got {self.screening_share}")
        if self.screening_by not in SCREENING_BY:
            raise ValueError(f"screening_by must be one of {', '.join(SCREENING_BY)}, got {self.screening_by!r}")

    @property
    def target(self) -> str:
        """The objective that chooses each basin's best simulated member (the first target)."""
        return self.objectives[0]
