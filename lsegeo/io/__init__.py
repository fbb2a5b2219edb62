"""Input and output at the edges of the pipeline: source readers, zarr stores, intake catalogs."""
