"""Where `reindex` encodes: the local pipeline (pipeline.py, the default) or a Ray cluster (ray.py).

Every engine reads the same units, journals them and commits them into shards and the manifest in the
same order in one process (the driver); an engine only decides where the encoder calls run."""
