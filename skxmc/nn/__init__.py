"""torch modules of the deep estimators (encoders, heads, losses).

Modules only; data loading, devices and training loops live in
:mod:`skxmc.training`.
"""
