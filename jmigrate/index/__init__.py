"""Reading corpora and writing crash-safe Parquet indexes (`jmigrate reindex`)."""
