"""Valid ranges of options, stated once in type annotations and checked by one mechanism.

Every numeric or size option of a method, backbone, head, the datamodule and a probe callback is
annotated with a restricted type (``output_dim: PositiveInt``, ``momentum: Momentum``). The same
annotation is checked twice, by the same rule:

- on the command line and in config files, by jsonargparse (it knows these types): a value out of
  range is a parse error, one line naming the option and the value (`sslprobe.cli.errors`);
- in Python, by `check_options`: `CheckedOptions` (a base of `SSLMethod`, the datamodule and the
  probe callbacks) runs it on the arguments of every construction, `checked` wraps a function
  (the backbone factories, the projector heads).

A numeric option that is deliberately unrestricted says so in `UNRESTRICTED`, with the reason;
``tests/cli/test_option_ranges.py`` walks every registered class and fails on a numeric option that does
neither.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
import typing
from collections.abc import Callable
from types import UnionType
from typing import Any

from jsonargparse.typing import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    restricted_number_type,
)

AtLeastTwoInt = restricted_number_type("AtLeastTwoInt", int, (">=", 2))
AtLeastFourInt = restricted_number_type("AtLeastFourInt", int, (">=", 4))
AtLeastTenInt = restricted_number_type("AtLeastTenInt", int, (">=", 10))
Momentum = restricted_number_type("Momentum", float, [(">=", 0.0), ("<", 1.0)])  # [0, 1)
HalfOpenUnitInterval = restricted_number_type("HalfOpenUnitInterval", float, [(">", 0.0), ("<=", 1.0)])  # (0, 1]
AtLeastOneFloat = restricted_number_type("AtLeastOneFloat", float, (">=", 1.0))  # e.g. an imbalance ratio

# What a value of each type must be, in the words of an error message ("expected <this>, got ...").
EXPECTED = {
    "PositiveInt": "a positive int",
    "NonNegativeInt": "an int >= 0",
    "PositiveFloat": "a number > 0",
    "NonNegativeFloat": "a number >= 0",
    "ClosedUnitInterval": "a number in [0, 1]",
    "OpenUnitInterval": "a number in (0, 1)",
    "AtLeastTwoInt": "an int >= 2",
    "AtLeastFourInt": "an int >= 4",
    "AtLeastTenInt": "an int >= 10",
    "Momentum": "a number in [0, 1)",
    "HalfOpenUnitInterval": "a number in (0, 1]",
    "AtLeastOneFloat": "a number >= 1",
}
RESTRICTED = (PositiveInt, NonNegativeInt, PositiveFloat, NonNegativeFloat, ClosedUnitInterval, OpenUnitInterval,
              AtLeastTwoInt, AtLeastFourInt, AtLeastTenInt, Momentum, HalfOpenUnitInterval, AtLeastOneFloat)

# Numeric options deliberately left without a range: ``"<Class or function>.<parameter>"`` -> why.
UNRESTRICTED: dict[str, str] = {}


def expected(restricted: type) -> str:
    """The words for what a value of ``restricted`` must be."""
    return EXPECTED.get(restricted.__name__, f"a {restricted.__name__}")


def _violation(annotation: Any, value: Any) -> str | None:
    """Why ``value`` does not fit the restricted types inside ``annotation`` (None: it fits or is unchecked).

    Only restricted types are checked (plain ``int``, ``str``, ``Literal`` are left to the code
    that uses them); unions, ``Optional``, ``tuple[...]`` and ``list[...]`` are looked into.
    """
    if annotation in RESTRICTED:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None if value is None else f"expected {expected(annotation)}, got {value!r}"
        try:
            annotation(value)
        except ValueError:
            return f"expected {expected(annotation)}, got {value!r}"
        return None
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, UnionType):
        if value is None and type(None) in arguments:
            return None
        reasons = [_violation(member, value) for member in arguments if member is not type(None)]
        return None if None in reasons else next(r for r in reasons if r)
    if origin in (tuple, list) and isinstance(value, (tuple, list)):
        members = arguments[:1] * len(value) if origin is list or arguments[-1:] == (Ellipsis,) else arguments
        for index, (member, item) in enumerate(zip(members, value, strict=False)):
            reason = _violation(member, item)
            if reason:
                return f"item {index}: {reason}"
    return None


@functools.cache
def annotated_options(function: Callable) -> dict[str, Any]:
    """Parameter name -> annotation of ``function`` (a class: its ``__init__`` and those of its bases)."""
    functions = [klass.__init__ for klass in function.__mro__ if "__init__" in vars(klass)] \
        if isinstance(function, type) else [inspect.unwrap(function)]
    options: dict[str, Any] = {}
    for each in reversed(functions):  # the most derived class wins
        try:
            options.update(typing.get_type_hints(each))
        except (NameError, TypeError):  # a base outside this project with unresolvable annotations
            continue
    options.pop("return", None)
    return options


def check_options(function: Callable, arguments: dict[str, Any], owner: str | None = None) -> None:
    """Raise a ValueError naming the first argument out of its annotated range.

    Args:
        function: a class (its constructors' annotations) or a function.
        arguments: the arguments of one call, by parameter name.
        owner: the name to put before the option (default: the function's or class's name).
    """
    options = annotated_options(function)
    for name, value in arguments.items():
        reason = _violation(options[name], value) if name in options else None
        if reason:
            raise ValueError(f"{owner or function.__name__}.{name}: {reason}")


def bound_arguments(function: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of a call of ``function`` by parameter name (``**kwargs`` spread out)."""
    signature = inspect.signature(function)
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return dict(kwargs)  # the call itself will raise its TypeError
    named = dict(bound.arguments)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            named.update(named.pop(name, {}))
    return named


class CheckedOptions:
    """Base that checks a construction's arguments against the annotations of every ``__init__``
    of the class (`check_options`) before the object is made, in Python as from a config."""

    def __new__(cls, *args, **kwargs):
        init = cls.__init__
        check_options(cls, bound_arguments(init, (None, *args), kwargs) if args else kwargs)
        return super().__new__(cls)


def plain_numbers(value: Any) -> Any:
    """``value`` with every restricted number (an instance of a subclass of int or float, as the parser
    returns them) made a plain int or float, in place inside mappings and jsonargparse namespaces.

    A restricted type is for checking; passed on, it would reach W&B's config as a string and a
    checkpoint's hyper-parameters as a class that weights-only loading refuses.
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and type(value) is not int:
        return int(value)
    if isinstance(value, float) and type(value) is not float:
        return float(value)
    if isinstance(value, (list, tuple)):
        return type(value)(plain_numbers(item) for item in value)
    if hasattr(value, "items") and hasattr(value, "__setitem__"):  # a dict or a jsonargparse Namespace
        for key, item in list(value.items()):
            value[key] = plain_numbers(item)
    return value


def checked(function: Callable) -> Callable:
    """``function`` with its arguments checked against its annotations on every call."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        check_options(function, bound_arguments(function, args, kwargs))
        return function(*args, **kwargs)

    return wrapper


class OneLineParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` for the scripts: a bad argument is one line (``PROG: error: …``, exit 2),
    not the usage block."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (--help shows the usage)", file=sys.stderr)
        raise SystemExit(2)


__all__ = ["EXPECTED", "RESTRICTED", "UNRESTRICTED", "AtLeastFourInt", "AtLeastTenInt", "AtLeastTwoInt",
           "OneLineParser",
           "CheckedOptions", "ClosedUnitInterval", "HalfOpenUnitInterval", "Momentum", "NonNegativeFloat",
           "NonNegativeInt", "OpenUnitInterval", "PositiveFloat", "PositiveInt", "check_options", "checked",
           "expected", "plain_numbers"]
