"""A config file that cannot be read, is not YAML or holds no mapping of options: one line naming the
file, exit 2, nothing created (and the next ``--config`` is not read)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONFIGS  # tests/cli/conftest.py

# case: (file content, or None for a directory; what the line must say after the file's name)
CASES = {
    "not_yaml": (b"model: [unclosed\n  - x: :\n", "not valid YAML (line 2, column 6: "),
    "tab_indented": (b"model:\n\tclass_path: x\n", "not valid YAML (line 2, column 1: "),
    "list": (b"- fit\n- data\n",
             "expected a mapping of options (model:, data:, trainer: ...), the file is a YAML list"),
    "string": (b"just words\n", "the file is a YAML string"),
    "empty": (b"", "the file is empty"),
    "binary": (b"model: \xff\xfe\x00\n", "not a text file (byte 7 is not UTF-8)"),
    "directory": (None, "is a directory, not a config file"),
    "missing": ("absent", "no such file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_file_is_one_line_naming_it(case, run_cli, tmp_path):
    content, words = CASES[case]
    path = tmp_path / f"{case}.yaml"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    root = tmp_path / "runs"
    args = ["fit", "--config", str(CONFIGS / "quickstart.yaml"), "--config", str(path),
            "--trainer.default_root_dir", str(root)]
    code, out, err = run_cli(args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"sslprobe: error: --config {path}: ") and words in lines[0], lines[0]
    assert out == ""
    assert not root.exists()
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ([path.name] if content != "absent" else [])
