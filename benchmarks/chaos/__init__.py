"""Chaos suite: records converge while faults are injected; an auditor then compares the store
with the engines. `python -m benchmarks.chaos --profile short|long` (see README.md here)."""
