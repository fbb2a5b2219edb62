"""Names shared by every store and step: dimensions, store groups, store kinds.

Spell a dimension through these constants rather than as a literal, so that one name is used
for one concept everywhere (a *score* of a member on a *period* by an *objective*).
"""

from __future__ import annotations

__all__ = [
    "BASIN", "MEMBER", "PARAM", "OBJECTIVE", "PERIOD", "TIME", "TARGET", "CLUSTER", "ITERATION",
    "RUN", "CHAIN", "CHECKPOINT",
]

#: gauge (basin) id, an 8-character string for CAMELS-US
BASIN = "basin"
#: one parameter set of an ensemble (member 0 is the default set)
MEMBER = "member"
#: one calibratable parameter
PARAM = "param"
#: one objective function (KGE', NSE, ...)
OBJECTIVE = "objective"
#: a named scoring period (``calibration``, ``test``)
PERIOD = "period"
#: days
TIME = "time"
#: an emulated target (an objective made bounded, e.g. ``nkgeprime``)
TARGET = "target"
#: a group of basins (e.g. a flood-generation cluster)
CLUSTER = "cluster"
#: one step of the calibration loop (0 = the initial design)
ITERATION = "iteration"
#: one model run of a direct search
RUN = "run"
#: one chain of a multi-chain direct search
CHAIN = "chain"
#: a budget at which a direct search's best set is kept
CHECKPOINT = "checkpoint"
