"""Subcommand checks and one-line error messages (parse errors condensed, with a suggestion)."""
from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import re

from sslprobe.methods import METHODS

KNOWN_KEYS: list[str] = []  # option names of the last parser built, for "did you mean" suggestions


SUBCOMMANDS = ("fit", "validate", "test", "predict", "probe")


class UsageError(ValueError):
    """No subcommand, or one that does not exist."""


def check_subcommand(argv: list[str]) -> None:
    """The first argument is one of `SUBCOMMANDS` (or an option such as --help), else a `UsageError`."""
    choices = ", ".join(SUBCOMMANDS)
    if not argv:
        raise UsageError(f"give a subcommand: python -m sslprobe {{{choices.replace(', ', ',')}}} ... "
                         "(probe measures a checkpoint; add --help after any of them for its options)")
    if not argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
        close = difflib.get_close_matches(argv[0], SUBCOMMANDS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown subcommand {argv[0]!r}{hint} (choose from {choices})")


_STRUCTURE = ("Parser key", "Does not validate", "Subtypes:", "Errors:", "Given value",
              "- Expected a <class 'NoneType'>", "- Problem with given class_path")
_UNKNOWN_OPTION = re.compile(
    r"unrecognized arguments: --(?P<a>\S+)|Option '(?P<b>[^']+)' is not accepted|"
    r"does not accept option '(?P<c>[^']+)'|Key '(?P<d>[^']+)' is not expected"
)


def _option_names(cls: type) -> list[str]:
    """Constructor parameters of ``cls`` and its bases (what ``init_args`` accepts)."""
    names = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names += [n for n in inspect.signature(klass.__init__).parameters if n not in ("self", "args", "kwargs")]
    return names


def explain_parse_error(text: str, known_keys: list[str]) -> str:
    """One line from jsonargparse's nested error report: the key, what was wrong, a suggestion."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    keys = re.findall(r'Parser key "([^"]+)"', text)
    class_path = re.search(r"class_path '([^']+)'", text)
    details = [line.lstrip("- ") for line in lines if not line.startswith(_STRUCTURE)]
    detail = details[0] if details else lines[0]
    unknown = _UNKNOWN_OPTION.search(text)
    if unknown:
        name = next(group for group in unknown.groups() if group)
        candidates = list(known_keys)
        if class_path:
            try:
                module, _, attr = class_path.group(1).rpartition(".")
                candidates = _option_names(getattr(importlib.import_module(module), attr))
            except (ImportError, AttributeError, ValueError):
                pass
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        where = f"{'.'.join(keys)}: " if keys and not name.startswith(keys[0]) else ""
        return f"{where}unknown option {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
    literal = re.match(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)", detail)
    if literal:
        detail = f"expected one of {literal.group(1)}, got {literal.group(2)!r}"
    if "has no attribute" in detail and class_path:
        methods = ", ".join("sslprobe.methods." + m for m in METHODS)
        detail = f"no class {class_path.group(1)!r}; methods: {methods}"
    return f"{'.'.join(keys)}: {detail}" if keys else detail


def error_line(error: BaseException, known_keys: list[str] | None = None) -> str:
    """The line of ``error`` that names the problem (parse errors are condensed to one)."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    if isinstance(error, argparse.ArgumentError) or text.startswith(
        ("Parser key", "unrecognized", "Subcommand", "Does not validate")
    ):
        return explain_parse_error(text, known_keys or [])
    return text.splitlines()[0]
