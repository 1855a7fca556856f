"""Self-supervised methods (and a supervised baseline) over one small base, `SSLMethod`."""

from sslprobe.methods.barlow_twins import BarlowTwins
from sslprobe.methods.base import SSLMethod
from sslprobe.methods.info_nce import InfoNCE
from sslprobe.methods.simclr import SimCLR
from sslprobe.methods.spectral import SpectralContrastive
from sslprobe.methods.supervised import Supervised
from sslprobe.methods.vicreg import VICReg

__all__ = ["BarlowTwins", "InfoNCE", "SSLMethod", "SimCLR", "SpectralContrastive", "Supervised", "VICReg"]
