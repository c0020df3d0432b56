"""Results stage: cell and run records, the run store, the index, comparison
with earlier runs, and provenance."""
