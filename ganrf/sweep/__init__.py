"""Sweeps: the shared command line, named experiments, trials and packs, presets, GPU shares and
plans; the Ray Tune adapter, with every module that imports Ray (and sets Ray's authentication
mode), is the sub-package :mod:`ganrf.sweep.raytune`.

Importing this package, or any module of it outside ``raytune``, leaves Ray and its environment
alone.
"""
