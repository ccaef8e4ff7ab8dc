"""The Ray Tune adapter: every module of the project that imports Ray. :mod:`.tune` is the
driver (starts or joins Ray, builds and runs the ``Tuner``, resumes), :mod:`.trainable` one Tune
trial on a worker, :mod:`.progress` and :mod:`.trackers` (with :mod:`.tensorboard`) the callbacks
it hands Tune, and :mod:`.cluster` the offline checks of a cluster launcher YAML, which borrow
Ray's own.

Ray reads its authentication mode once, when it is first imported in a process, and every
module that imports Ray lives in this package. So the mode is set here, before any of them can
import Ray: Ray 2.60's core gRPC servers (GCS, raylet, workers) listen on every interface
whatever the node IP, so token authentication is on unless the user chose otherwise; they then
refuse any client without the cluster's token (a local ``ray.init`` makes one, in
``~/.ray/auth_token``). Set anywhere later, a process that imported Ray first through another
module (``ganrf.sweep.raytune.progress``, say) starts token-mode services it cannot itself talk
to. The rest of :mod:`ganrf.sweep` (trials, experiments, presets, plans) neither imports Ray nor
touches its environment, so ``analysis/`` and tools can read them without changing Ray's mode.
"""

import os

os.environ.setdefault("RAY_AUTH_MODE", "token")
