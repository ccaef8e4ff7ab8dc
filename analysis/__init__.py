"""Experiment folders -> pandas -> plotly pages. Imports neither torch nor Ray, so it runs on a
laptop over results copied from a cluster."""
