"""Potential evapotranspiration from daily Daymet-style forcing.

The formula is Priestley & Taylor (1972) with the net radiation of FAO-56 (Allen et al. 1998,
equations 7, 8, 11-13, 21-25, 37-40), the same choice as CAMELS itself (Newman et al. 2015;
Addor et al. 2017 compute ``pet_mean`` with Priestley-Taylor from Daymet)::

    PET = alpha * Delta / (Delta + gamma) * (Rn - G) / lambda            [mm day-1]

with ``alpha = 1.26``, ``G = 0`` at the daily step, ``lambda = 2.45 MJ kg-1``,

* ``Rs = srad * dayl / 1e6`` [MJ m-2 day-1]; Daymet ``srad`` is the mean flux over the daylight
  period, so it is multiplied by the day length, not by 86400 s;
* ``Rns = (1 - 0.23) Rs`` (grass albedo);
* ``Rnl = sigma (Tmax_K^4 + Tmin_K^4)/2 (0.34 - 0.14 sqrt(ea)) (1.35 Rs/Rso - 0.35)`` with ``ea``
  the vapour pressure in kPa and ``Rso = (0.75 + 2e-5 z) Ra`` (``Ra``: extraterrestrial radiation
  from latitude and day of year); ``Rs/Rso`` is kept within [0.3, 1] (ASCE-EWRI 2005), so cloud
  cover never turns the net long-wave loss into a gain;
* ``Delta`` the slope of the saturation vapour pressure curve at the mean temperature and
  ``gamma = 0.000665 P`` with ``P`` the air pressure at elevation ``z`` (FAO-56 eq. 7).

Negative values (net long-wave loss larger than the short-wave gain, in winter) are set to 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["extraterrestrial_radiation", "priestley_taylor"]

SIGMA = 4.903e-9  # Stefan-Boltzmann constant, MJ K-4 m-2 day-1
GSC = 0.0820  # solar constant, MJ m-2 min-1
LAMBDA = 2.45  # latent heat of vaporisation, MJ kg-1
ALPHA_PT = 1.26


def extraterrestrial_radiation(lat_deg: float | np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial radiation ``Ra`` [MJ m-2 day-1] (FAO-56 eq. 21-25).

    Parameters
    ----------
    lat_deg : float or array
        Latitude in degrees north.
    doy : array of int
        Day of the year, 1-366.
    """
    phi = np.deg2rad(lat_deg)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi / 365.0 * doy)
    delta = 0.409 * np.sin(2.0 * np.pi / 365.0 * doy - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    return (24.0 * 60.0 / np.pi) * GSC * dr * (
        ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws)
    )


def priestley_taylor(
    tmax: np.ndarray,
    tmin: np.ndarray,
    srad: np.ndarray,
    dayl: np.ndarray,
    vp: np.ndarray,
    doy: np.ndarray,
    lat_deg: float,
    elev_m: float,
    alpha: float = ALPHA_PT,
) -> np.ndarray:
    """Priestley-Taylor potential evapotranspiration [mm day-1] from Daymet variables.

    Parameters
    ----------
    tmax, tmin : array
        Daily maximum and minimum air temperature [degC].
    srad : array
        Daylight-mean incoming shortwave radiation [W m-2].
    dayl : array
        Day length [s].
    vp : array
        Daily mean vapour pressure [Pa].
    doy : array of int
        Day of the year.
    lat_deg : float
        Latitude [degrees north].
    elev_m : float
        Elevation [m].
    alpha : float, default 1.26
        Priestley-Taylor coefficient.

    Returns
    -------
    numpy.ndarray
        PET in mm day-1, non-negative, same shape as ``tmax``.
    """
    tmax = np.asarray(tmax, dtype=np.float64)
    tmin = np.asarray(tmin, dtype=np.float64)
    tmean = 0.5 * (tmax + tmin)
    rs = np.asarray(srad, dtype=np.float64) * np.asarray(dayl, dtype=np.float64) * 1e-6
    ra = extraterrestrial_radiation(lat_deg, np.asarray(doy))
    rso = (0.75 + 2e-5 * elev_m) * ra
    ratio = np.clip(np.divide(rs, rso, out=np.ones_like(rs), where=rso > 0), 0.3, 1.0)
    ea = np.maximum(np.asarray(vp, dtype=np.float64) * 1e-3, 0.0)  # Pa -> kPa
    rnl = (SIGMA * 0.5 * ((tmax + 273.16) ** 4 + (tmin + 273.16) ** 4)
           * (0.34 - 0.14 * np.sqrt(ea)) * (1.35 * ratio - 0.35))
    rn = (1.0 - 0.23) * rs - rnl
    es_t = 0.6108 * np.exp(17.27 * tmean / (tmean + 237.3))
    slope = 4098.0 * es_t / (tmean + 237.3) ** 2
    pressure = 101.3 * ((293.0 - 0.0065 * elev_m) / 293.0) ** 5.26
    gamma = 0.000665 * pressure
    pet = alpha * slope / (slope + gamma) * rn / LAMBDA
    return np.maximum(pet, 0.0)
