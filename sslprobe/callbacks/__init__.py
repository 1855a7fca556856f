"""Lightning callbacks: they schedule the probes and log them; the maths lives in `sslprobe.probes`.

Every module of this package is imported here, so a new probe callback (a `ProbeCallback` with a
``config_key``) in its own file is registered in `PROBE_CALLBACKS` without being listed.
"""

import importlib
import pkgutil

from sslprobe.callbacks.base import PROBE_CALLBACKS, ProbeCallback
from sslprobe.callbacks.knn_monitor import KNNMonitor
from sslprobe.callbacks.landscape import LandscapeProbe, ProbeTargetError
from sslprobe.callbacks.linear_eval import LinearEvaluation
from sslprobe.callbacks.progress import RunProgressBar
from sslprobe.callbacks.resume import ExactResume, Preempted
from sslprobe.callbacks.spectrum import ProjectorSpectrum
from sslprobe.callbacks.theory import TheoryProbe

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
# The order the probes are added to a fit (and run at its end): the built-in ones first, in the
# order the configs have always used, then any new one in import order.
_FIRST = ("spectrum", "landscape", "linear_eval", "theory", "knn_monitor")
_ordered = {**{key: PROBE_CALLBACKS[key] for key in _FIRST}, **PROBE_CALLBACKS}
PROBE_CALLBACKS.clear()
PROBE_CALLBACKS.update(_ordered)

__all__ = [
    "PROBE_CALLBACKS",
    "ExactResume",
    "KNNMonitor",
    "LandscapeProbe",
    "LinearEvaluation",
    "Preempted",
    "ProbeCallback",
    "ProbeTargetError",
    "ProjectorSpectrum",
    "RunProgressBar",
    "TheoryProbe",
]
