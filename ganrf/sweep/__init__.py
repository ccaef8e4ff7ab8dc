"""Sweeps: the shared command line, named experiments, trials and packs, presets, GPU
shares, the Ray Tune adapter (the only module that runs Ray) and cluster checks.

Every module of the project that imports Ray lives in this package, and Ray reads its
authentication mode once, when it is first imported in a process. So the mode is set here, before
any of them can import Ray: Ray 2.60's core gRPC servers (GCS, raylet, workers) listen on every
interface whatever the node IP, so token authentication is on unless the user chose otherwise;
they then refuse any client without the cluster's token (a local ``ray.init`` makes one, in
``~/.ray/auth_token``). Set anywhere later, a process that imported Ray first through another
module (``ganrf.sweep.progress``, say) starts token-mode services it cannot itself talk to.
"""

import os

os.environ.setdefault("RAY_AUTH_MODE", "token")
