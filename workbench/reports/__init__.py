"""Reports: plotly figures (plots.py), the demo with its HTML report (demo.py), the toy-world
results tables (results.py), the erasers' sweep cells (cells.py) and the pages built on them:
docs/robustness.md (robustness.py), its attack table (attacked.py) and the reactivation view
(reactivation.py). Submodules load on use."""
