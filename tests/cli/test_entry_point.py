"""The ``sslprobe`` console script is the same entry point as ``python -m sslprobe``; ``--version``
prints the installed package's version from its metadata."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import subprocess
import sys

from conftest import REPO  # tests/cli/conftest.py

import sslprobe
import sslprobe.__main__
from sslprobe.cli import main, package_version


def test_console_script_resolves_to_the_main_of_python_m_sslprobe():
    pyproject = (REPO / "pyproject.toml").read_text()
    scripts = pyproject.split("[project.scripts]", 1)[1].split("\n[", 1)[0]  # the table's lines
    (target,) = re.findall(r'^sslprobe = "([^"]+)"$', scripts, flags=re.M)
    module, _, attribute = target.partition(":")
    entry = getattr(importlib.import_module(module), attribute)
    assert entry is main is sslprobe.__main__.main


def test_version_is_the_package_metadata(run_cli):
    try:
        expected = importlib.metadata.version("sslprobe")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        expected = sslprobe.__version__
    assert package_version() == expected
    code, out, err = run_cli(["--version"])
    assert (code, out, err) == (0, f"sslprobe {expected}\n", "")


def test_python_m_sslprobe_version_in_a_fresh_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sslprobe", "--version"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sslprobe {package_version()}\n" and done.stderr == ""
    assert not list(tmp_path.iterdir())  # nothing created
