"""Priestley-Taylor PET: FAO-56 worked examples and agreement with the CAMELS climate indices."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lsegeo.ingest.pet import extraterrestrial_radiation, priestley_taylor
from lsegeo.io.camels import read_attributes, read_forcing


def test_extraterrestrial_radiation_fao56_example_8():
    # FAO-56 example 8: 20 deg S on 3 September (day 246): Ra = 32.2 MJ m-2 day-1
    assert np.isclose(extraterrestrial_radiation(-20.0, np.array([246]))[0], 32.2, atol=0.05)


def test_pet_non_negative_and_zero_without_sun():
    doy = np.arange(1, 366)
    pet = priestley_taylor(np.full(365, -20.0), np.full(365, -30.0), np.zeros(365), np.full(365, 30000.0),
                           np.full(365, 100.0), doy, 60.0, 500.0)
    assert (pet == 0).all()
    warm = priestley_taylor(np.full(365, 30.0), np.full(365, 18.0), np.full(365, 500.0), np.full(365, 50000.0),
                            np.full(365, 1500.0), doy, 35.0, 100.0)
    assert (warm > 3).all() and (warm < 12).all()


def test_pet_close_to_camels_pet_mean(camels):
    attrs = read_attributes(camels)
    ratios = []
    for g in ("01022500", "03015500", "06221400", "09386900", "12114500"):
        f = read_forcing(camels.forcing_path(g)).data.loc["1989-10-01":"2009-09-30"]
        pet = priestley_taylor(f.tmax, f.tmin, f.srad, f.dayl, f.vp, pd.DatetimeIndex(f.index).day_of_year.to_numpy(),
                               attrs.loc[g, "gauge_lat"], attrs.loc[g, "elev_mean"])
        ratios.append(pet.mean() / attrs.loc[g, "pet_mean"])
    assert all(0.75 < r < 1.25 for r in ratios), ratios
