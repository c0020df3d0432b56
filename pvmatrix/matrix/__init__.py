"""Matrix runs: a spec (spec.py) becomes a task graph (plan.py) of cells
(cells.py), run on Dask distributed (scheduler.py, tasks.py), recorded as each
cell finishes (store.py), indexed across runs (index.py), compared
(compare.py); runner.py ties them together for `pvmatrix run`."""
