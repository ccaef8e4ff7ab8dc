"""Sweeps: the shared command line, named experiments, trials and packs, presets, GPU
shares, the Ray Tune adapter (the only module that runs Ray) and cluster checks."""
