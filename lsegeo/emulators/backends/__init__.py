"""Regression backends of the emulators (xgboost trees, random forests, torch MLP), each imported only when chosen."""
