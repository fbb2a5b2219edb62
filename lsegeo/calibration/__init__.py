"""Calibration: the iterative emulator loop and its store, direct calibration, comparison of calibrations."""
