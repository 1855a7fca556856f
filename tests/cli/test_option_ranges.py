"""Generated from the signatures: every numeric or size option of every registered class states its
range (`sslprobe.options`), and a value outside it fails cleanly, through the real CLI parser and in
Python. Classes come from the registries (methods, backbones, probe callbacks) and from the
subclasses of LightningDataModule in `sslprobe.data`, so a new option or class is covered unasked.
"""

from __future__ import annotations

import inspect
import re
import typing
from types import UnionType

import pytest
from lightning.pytorch import LightningDataModule

import sslprobe.data  # noqa: F401 (defines the datamodules)
import sslprobe.nn.heads
from sslprobe.callbacks import PROBE_CALLBACKS
from sslprobe.methods import METHODS
from sslprobe.nn.backbones import BACKBONES
from sslprobe.options import RESTRICTED, UNRESTRICTED, annotated_options, check_options

CANDIDATES = (0, -1, 1, 1.5, 3, 9, -0.5)  # one of them is outside every range in `RESTRICTED`


def datamodules() -> list[type]:
    found, pending = [], list(LightningDataModule.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__.startswith("sslprobe."):
            found.append(cls)
    return sorted(found, key=lambda cls: cls.__name__)


def heads() -> list:
    return [f for _, f in inspect.getmembers(sslprobe.nn.heads, inspect.isfunction)
            if f.__module__ == sslprobe.nn.heads.__name__ and not f.__name__.startswith("_")]


def owners() -> dict[str, typing.Callable]:
    """Every class or factory of sslprobe whose options a user sets, by the name the test ids use."""
    found = {**{f"method:{name}": cls for name, cls in METHODS.items()},
             **{f"backbone:{name}": factory for name, factory in BACKBONES.items()},
             **{f"head:{f.__name__}": f for f in heads()},
             **{f"data:{cls.__name__}": cls for cls in datamodules()},
             **{f"probe:{key}": cls for key, cls in PROBE_CALLBACKS.items()}}
    # The package's own (classes that other tests define register too, and are theirs to check).
    return {key: owner for key, owner in found.items() if owner.__module__.startswith("sslprobe.")}


def _members(annotation) -> list:
    """The types an annotation is made of (unions, Optional, tuple[...] and list[...] opened)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, UnionType, tuple, list):
        return [m for a in typing.get_args(annotation) if a is not Ellipsis for m in _members(a)]
    return [annotation]


def restricted_in(annotation) -> list[type]:
    return [m for m in _members(annotation) if m in RESTRICTED]


def numeric(annotation) -> bool:
    return any(isinstance(m, type) and issubclass(m, (int, float)) and m is not bool for m in _members(annotation))


def own_parameters(owner) -> dict[str, inspect.Parameter]:
    """The parameters a class or function declares itself (a class: its ``__init__``), ``self`` excluded."""
    function = owner.__init__ if isinstance(owner, type) else inspect.unwrap(owner)
    return {name: p for name, p in inspect.signature(function).parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def out_of_range(annotation, default):
    """A value the annotation rejects: the first candidate outside the range (in a tuple/list: item 0)."""
    restricted = restricted_in(annotation)[0]
    bad = next(c for c in CANDIDATES if _rejects(restricted, c))
    if typing.get_origin(annotation) in (tuple, list):
        return [bad, *list(default)[1:]]
    return bad


def _rejects(restricted: type, value) -> bool:
    try:
        restricted(value)
    except ValueError:
        return True
    return False


def cases() -> list[tuple[str, str]]:
    """(owner id, option) for every restricted option: a class's own options, and for a method also
    one option of its base (the output width), reached through the method's ``**kwargs``."""
    found = []
    for owner_id, owner in owners().items():
        options = annotated_options(owner)
        names = list(own_parameters(owner))
        if owner_id.startswith("method:"):
            names.append("output_dim")
        found += [(owner_id, name) for name in dict.fromkeys(names) if restricted_in(options.get(name))]
    return found


@pytest.mark.parametrize("owner_id", sorted(owners()))
def test_every_numeric_option_states_its_range(owner_id):
    owner = owners()[owner_id]
    options = annotated_options(owner)
    parameters = {name: p for declaring in (owner.__mro__ if isinstance(owner, type) else [owner])
                  if not isinstance(owner, type) or "__init__" in vars(declaring)
                  for name, p in own_parameters(declaring).items()}
    assert parameters, owner_id
    unstated = []
    for name, parameter in parameters.items():
        annotation = options.get(name)
        label = f"{getattr(owner, '__name__', owner_id)}.{name}"
        if annotation is None or not numeric(annotation) or label in UNRESTRICTED:
            continue
        if not restricted_in(annotation):
            unstated.append(label)
        elif parameter.default is not inspect.Parameter.empty:  # the default is inside its own range
            check_options(owner, {name: parameter.default})
    assert not unstated, f"numeric options without a range (annotate them, or list them in UNRESTRICTED): {unstated}"


def command_line(owner_id: str, name: str, value) -> tuple[list[str], str]:
    """The arguments that set option ``name`` of ``owner_id`` to ``value``, and the option as the error names it."""
    kind, _, key = owner_id.partition(":")
    text = str(value).replace("'", "")
    if kind == "method":
        return (["--model.class_path", f"sslprobe.methods.{key}", f"--model.init_args.{name}", text],
                f"model.init_args.{name}")
    if kind == "backbone":
        return (["--model.class_path", "sslprobe.methods.SimCLR", "--model.init_args.backbone", key,
                 "--model.init_args.backbone_kwargs", f"{{{name}: {text}}}"], f"model.init_args.backbone_kwargs.{name}")
    if kind == "data":
        return ["--model.class_path", "sslprobe.methods.SimCLR", f"--data.{name}", text], f"data.{name}"
    return (["--model.class_path", "sslprobe.methods.SimCLR", f"--probes.{key}.{name}", text],
            f"probes.{key}.init_args.{name}")


@pytest.mark.parametrize("owner_id,name", [c for c in cases() if not c[0].startswith("head:")])
def test_out_of_range_value_is_a_one_line_parse_error(owner_id, name, run_cli, tmp_path):
    owner = owners()[owner_id]
    value = out_of_range(annotated_options(owner)[name], default_of(owner, name))
    args, option = command_line(owner_id, name, value)
    code, out, err = run_cli(["fit", *args, "--trainer.default_root_dir", str(tmp_path / "runs"), "--print_config"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert out == ""
    assert len(lines) == 1, err
    assert re.match(rf"sslprobe: error: {re.escape(option)}: (item 0: )?expected ", lines[0]), lines[0]
    shown = value[0] if isinstance(value, list) else value
    assert lines[0].endswith(f"got {shown}"), lines[0]
    assert not (tmp_path / "runs").exists()


def default_of(owner, name):
    """The default of option ``name`` (a class: from the first of its bases that declares it)."""
    for declaring in (owner.__mro__ if isinstance(owner, type) else [owner]):
        if (not isinstance(owner, type) or "__init__" in vars(declaring)) and name in own_parameters(declaring):
            return own_parameters(declaring)[name].default
    raise KeyError(name)


@pytest.mark.parametrize("owner_id,name", cases())
def test_out_of_range_value_is_refused_in_python(owner_id, name):
    owner = owners()[owner_id]
    value = out_of_range(annotated_options(owner)[name], default_of(owner, name))
    # Arguments without default (a head's kind and input width): valid values.
    required = {n: "mlp" if n == "kind" else 8 for n, p in own_parameters(owner).items()
                if p.default is inspect.Parameter.empty and n != name}
    shown = value[0] if isinstance(value, list) else value
    with pytest.raises(ValueError, match=rf"\.{name}: (item 0: )?expected .*, got {shown}"):
        owner(**required, **{name: value})


def test_zero_width_embedding_is_refused(run_cli, tmp_path):
    """The hole that started this: an output width of 0 trained to the end."""
    from sslprobe.methods import SimCLR

    code, _, err = run_cli(["fit", "--model.class_path", "sslprobe.methods.SimCLR", "--model.init_args.output_dim",
                            "0", "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert code == 2
    assert err.strip() == "sslprobe: error: model.init_args.output_dim: expected a positive int, got 0"
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ValueError, match="SimCLR.output_dim: expected a positive int, got 0"):
        SimCLR(output_dim=0)
