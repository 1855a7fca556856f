"""Self-supervised methods (and a supervised baseline) over one small base, `SSLMethod`.

Every module of this package is imported here, and every `SSLMethod` subclass it defines is
registered in `METHODS` by class name and exported (``sslprobe.methods.SimCLR``): a new method is
one new file, found by the CLI, its error messages and the tests without being listed anywhere.
"""

import importlib
import pkgutil

from sslprobe.methods.base import METHODS, SSLMethod

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

globals().update(METHODS)
__all__ = ["METHODS", "SSLMethod", *sorted(METHODS)]
