"""Pure core: no I/O, no clock, no environment.

Functions here take plain values and return decisions: DAG order, fingerprints,
thresholds. Only the standard library, numpy and scipy may be imported.
"""
