"""sslprobe: self-supervised learning that measures why representations collapse."""

__version__ = "0.1.0"
