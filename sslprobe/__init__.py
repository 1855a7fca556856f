"""sslprobe: self-supervised learning that measures why representations collapse.

``sslprobe.probe(backbone, data, ...)`` measures any network (`sslprobe.probes.api.probe`).
"""

__version__ = "0.1.0"
__all__ = ["ProbeResults", "probe"]


def __getattr__(name: str):
    # Imported on first use, so ``import sslprobe`` stays light.
    if name in __all__:
        from sslprobe.probes import api, results

        return getattr(api, name, None) or getattr(results, name)
    raise AttributeError(f"module 'sslprobe' has no attribute {name!r}")
