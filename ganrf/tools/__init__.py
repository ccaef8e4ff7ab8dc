"""Commands beside the sweeps: ``ganrf train``, ``ganrf ls``, the bench and the device check."""
