"""Ingest: source files (CAMELS text files, ...) to a basins store, with derived forcing such as PET."""
