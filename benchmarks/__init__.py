"""Benchmarks for galileo_sessions: ``python -m benchmarks`` (see BENCHMARKS.md).

Every case is measured in one process and one run, as a ratio to a baseline measured in the
same run: the median over several rounds, with the spread (IQR, and min-max) across rounds.
Rounds interleave the measured functions and run ``gc.collect()`` in between, because the
machines this runs on are small and shared.
"""
