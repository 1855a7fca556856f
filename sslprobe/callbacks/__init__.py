"""Lightning callbacks: they schedule the probes and log them; the maths lives in `sslprobe.probes`."""

from sslprobe.callbacks.base import ProbeCallback
from sslprobe.callbacks.knn_monitor import KNNMonitor
from sslprobe.callbacks.landscape import LandscapeProbe, ProbeTargetError
from sslprobe.callbacks.linear_eval import LinearEvaluation
from sslprobe.callbacks.progress import RunProgressBar
from sslprobe.callbacks.resume import ExactResume, Preempted
from sslprobe.callbacks.spectrum import ProjectorSpectrum
from sslprobe.callbacks.theory import TheoryProbe

__all__ = [
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
