"""Subcommand checks and one-line error messages (parse errors condensed, with a suggestion)."""
from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import re
from collections.abc import Iterable
from pathlib import Path

from sslprobe.methods import METHODS
from sslprobe.options import EXPECTED

SUBCOMMANDS = ("fit", "validate", "test", "predict", "probe", "compare")


class UsageError(ValueError):
    """No subcommand, or one that does not exist."""


class ParseError(argparse.ArgumentError):
    """An argument or config value the parser rejected, already condensed to the one line `main` prints.

    The parser's own report is kept as ``__cause__`` (``SSLPROBE_DEBUG=1`` shows it).
    """

    def __init__(self, message: str):
        super().__init__(None, message)


def check_subcommand(argv: list[str]) -> None:
    """The first argument is one of `SUBCOMMANDS` (or an option such as --help), else a `UsageError`."""
    choices = ", ".join(SUBCOMMANDS)
    if not argv:
        raise UsageError(f"give a subcommand: python -m sslprobe {{{choices.replace(', ', ',')}}} ... "
                         "(probe measures a checkpoint or any model, compare sets runs side by side; "
                         "add --help after any of them for its options)")
    if not argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
        close = difflib.get_close_matches(argv[0], SUBCOMMANDS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown subcommand {argv[0]!r}{hint} (choose from {choices})")


# jsonargparse reports a rejected value as a chain of exceptions, one per nesting level, each raised
# ``from`` the one below (`_causes` walks it): the innermost is the problem itself, and its type says
# which kind (a missing class is an AttributeError or ImportError, an unknown key a KeyError). The
# rest exists only as text in the messages (the exceptions carry no key, class or value attribute),
# so these patterns read it (jsonargparse >= 4.27):
_PARSER_KEY = re.compile(r'Parser key "([^"]+)"')  # the key of one nesting level
_CLASS_PATH = re.compile(r"class_path '([^']+)'")  # the class whose arguments were being checked
_KEY_NAME = re.compile(r"[Oo]ption '([^']+)'|Key '([^']+)' is not expected")  # the unknown key's name
_LITERAL = re.compile(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)")  # the choices and the value
_RESTRICTED = re.compile(r"Not of type (\w+): (.*) does not conform to restriction")  # a value out of its range
_UNRECOGNIZED = "unrecognized arguments: "  # argparse's report of command-line options it has no action for


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from, outermost first."""
    chain = [error]
    while chain[-1].__cause__ is not None and chain[-1].__cause__ not in chain:
        chain.append(chain[-1].__cause__)
    return chain


def _message(error: BaseException) -> str:
    """The text of ``error`` (a KeyError's own message, without the quotes ``str`` adds)."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def _option_names(cls: type) -> list[str]:
    """Constructor parameters of ``cls`` and its bases (what ``init_args`` accepts)."""
    names = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names += [n for n in inspect.signature(klass.__init__).parameters if n not in ("self", "args", "kwargs")]
    return names


def _class_options(class_path: str | None) -> list[str] | None:
    """`_option_names` of the class at ``class_path``; None when there is none to import."""
    if class_path is None:
        return None
    try:
        module, _, attr = class_path.rpartition(".")
        return _option_names(getattr(importlib.import_module(module), attr))
    except (ImportError, AttributeError, ValueError):
        return None


def _unknown_option(name: str, keys: list[str], candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    where = f"{'.'.join(keys)}: " if keys and not name.startswith(keys[0]) else ""
    return f"{where}unknown option {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def condense_parse_error(error: BaseException, option_keys: Iterable[str] = ()) -> str:
    """One line from jsonargparse's nested error report: the key, what was wrong, a suggestion.

    Args:
        error: what the parser raised (``argparse.ArgumentError``, or a ``TypeError`` naming a key).
        option_keys: the parser's keys (``trainer.max_epochs``, ...), the candidates of "did you mean"
            for an unknown top-level option; an unknown ``init_args`` key is matched against its
            class's constructor instead.
    """
    chain = _causes(error)
    keys: list[str] = []
    class_path = None
    for link in chain:
        first_line = _message(link).strip().partition("\n")[0]
        key = _PARSER_KEY.match(first_line)
        if key and key.group(1) not in keys[-1:]:
            if class_path is not None:  # an option of the class named at the outer key: as it is typed
                keys.append("init_args")
            keys.append(key.group(1))
            class_path = None  # a class_path named above belongs to an outer key
        named = _CLASS_PATH.search(first_line)
        class_path = named.group(1) if named else class_path
    problem = chain[-1]
    text = _message(problem).strip()
    text = text[_PARSER_KEY.match(text).end():].lstrip(": \n") if _PARSER_KEY.match(text) else text
    detail = next((line.strip().lstrip("- ") for line in text.splitlines() if line.strip()), type(problem).__name__)
    if text.startswith(_UNRECOGNIZED) and text[len(_UNRECOGNIZED):].startswith("--"):
        name = text[len(_UNRECOGNIZED):].split()[0][2:].partition("=")[0]
        return _unknown_option(name, keys, list(option_keys))
    if isinstance(problem, KeyError):
        named = _KEY_NAME.search(text)
        if named:
            candidates = _class_options(class_path)
            return _unknown_option(next(g for g in named.groups() if g), keys,
                                   list(option_keys) if candidates is None else candidates)
    if isinstance(problem, (AttributeError, ImportError)) and class_path:
        methods = ", ".join("sslprobe.methods." + m for m in METHODS)
        detail = f"no class {class_path!r}" + (f"; methods: {methods}" if keys == ["model"] else "")
    restricted = next((match for link in chain if (match := _RESTRICTED.match(_message(link).strip()))), None)
    if restricted:
        name, value = restricted.groups()
        detail = f"expected {EXPECTED.get(name, 'a ' + name)}, got {value}"
    literal = _LITERAL.match(detail)
    if literal:
        detail = f"expected one of {literal.group(1)}, got {literal.group(2)!r}"
    return f"{'.'.join(keys)}: {detail}" if keys else detail


def config_files(argv: list[str]) -> list[str]:
    """The files given to ``--config`` in ``argv`` (``--config FILE`` and ``--config=FILE``)."""
    files = [arg.partition("=")[2] for arg in argv if arg.startswith("--config=")]
    return files + [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--config"]


def check_config_file(path: str) -> None:
    """``path`` is a readable YAML file holding a mapping of options, else a `ParseError` naming it."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParseError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise ParseError(f"--config {path}: is a directory, not a config file") from None
    except UnicodeDecodeError as error:
        raise ParseError(f"--config {path}: not a text file (byte {error.start} is not UTF-8)") from None
    except OSError as error:
        raise ParseError(f"--config {path}: cannot be read ({error.strerror or error})") from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).partition("\n")[0]
        raise ParseError(f"--config {path}: not valid YAML ({where}{problem})") from None
    if not isinstance(content, dict):
        kind = "string" if isinstance(content, str) else type(content).__name__
        kind = "empty" if content is None else f"a YAML {kind}"
        raise ParseError(f"--config {path}: expected a mapping of options (model:, data:, trainer: ...), "
                         f"the file is {kind}")


def error_line(error: BaseException) -> str:
    """The line of ``error`` that names the problem (parse errors are condensed to one)."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    if isinstance(error, ParseError):
        return text
    if isinstance(error, argparse.ArgumentError) or text.startswith(
        ("Parser key", "unrecognized", "Subcommand", "Does not validate")
    ):
        return condense_parse_error(error)
    return text.splitlines()[0]
