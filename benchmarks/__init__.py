"""The benchmark harness: leaderboard grids, their validation and reports, studies and
measurements. Each script runs as ``python benchmarks/NAME.py``; shared code is imported as
``benchmarks.MODULE`` (the package is installed with the project)."""
