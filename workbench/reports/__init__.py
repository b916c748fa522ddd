"""Reports: plotly figures (plots.py), the demo with its HTML report (demo.py) and the toy-world
results tables (results.py). Submodules load on use."""
