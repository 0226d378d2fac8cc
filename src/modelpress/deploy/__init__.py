"""Deploying models as cascades: a cheap stage decides the easy items, a precise one the rest.

``calibration``  temperature scaling per stage, expected calibration error, reliability bins
``certify``      thresholds chosen over a grid fixed in advance (Learn-then-Test) so that an exact
                 binomial (Clopper–Pearson) bound certifies the leakage of the early exits

Submodules are imported where they are used; importing this package loads nothing (scipy stays
out of ``import modelpress``).
"""
