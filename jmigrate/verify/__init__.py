"""`jmigrate verify`: search both indexes, score them against qrels, compare them, report."""
