"""Bisection: find the commit (commits.py) or the Kconfig options (configs.py)
that make a cell stop passing; each step builds and runs one cell (probe.py)."""
