"""The evaluate stage and what it measures with.

- `metrics`: quality metrics and fidelity to the teacher. A new metric is one entry in `metrics.METRICS`.
- `latency`: end-to-end single-text latency (warmed up, threads pinned) and batch throughput.
- `calibration`, `stats`: reliability curves, ECE, paired bootstrap intervals.
- `leaderboard`: the stage itself, every model of a run on the test split (imports the pipeline: top level).
This package's `__init__` imports nothing, so that lower stages can use `metrics` without the stage above.
"""
