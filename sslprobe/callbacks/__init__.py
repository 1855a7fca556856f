"""Lightning callbacks: they schedule the probes and log them; the maths lives in `sslprobe.probes`."""

from sslprobe.callbacks.resume import ExactResume, Preempted

__all__ = ["ExactResume", "Preempted"]
