"""What the documentation shows, read from its markdown: fenced blocks, and the commands in them.

Conventions the pages follow (and the docs tests hold them to):

- a shell command a reader may type is in a ```` ```bash ```` block, one command per line (a line
  ending in ``\\`` continues), ``#`` starts a comment; a command inside running text is an inline
  code span that starts with the program (``python -m sslprobe fit …``, ``make data``);
- output, file trees and other text are in ```` ```text ```` blocks;
- tutorial code is in ```` ```python title="FILE" ```` blocks: the blocks of one title, in order,
  are the file ``FILE``;
- a shell script's content (a SLURM job script) is in a ```` ```bash title="FILE" ```` block: its
  sslprobe commands are run with the script's variables bound (`script_commands`), its other lines
  (shell control, the scheduler's own commands) are not commands a reader types.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<info>.*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
INLINE = re.compile(r"`([^`\n]+)`")
# Programs whose commands the docs tests run; an inline span is a command when it starts with one and
# carries at least one argument after the subcommand or target.
INLINE_COMMAND = re.compile(r"^(python -m sslprobe \w+ -|sslprobe \w+ -|make [\w-]+$|(python )?scripts/\w+\.py -)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    title: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def pages() -> list[Path]:
    """Every markdown page of the site, and the README."""
    return sorted(DOCS.rglob("*.md")) + [REPO / "README.md"]


def blocks(path: Path) -> list[Block]:
    found, opened, body = [], None, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if opened is None and match:
            title = TITLE.search(match["info"])
            opened, body = (number, match["lang"], title["title"] if title else None), []
        elif opened is not None and line.startswith("```"):
            found.append(Block(path, opened[0], opened[1], opened[2], "\n".join(body)))
            opened = None
        elif opened is not None:
            body.append(line)
    assert opened is None, f"{path}:{opened[0]}: unclosed code fence"
    return found


def block_commands(block: Block) -> list[list[str]]:
    """The commands of a bash block as argument lists: continuations joined, comments dropped."""
    joined = block.text.replace("\\\n", " ")
    return [words for words in (shlex.split(line, comments=True) for line in joined.splitlines()) if words]


# Example values of the variables a scheduler sets for a job script.
SCRIPT_ENVIRONMENT = {"SLURM_JOB_ID": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0"}
_EXPANSION = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def script_commands(block: Block) -> list[list[str]]:
    """The commands of a script block, with ``NAME=value`` lines bound and ``$NAME`` expanded; a word
    that still holds an expansion (an unset variable, an empty array) expands to nothing, as in bash."""
    environment, found = dict(SCRIPT_ENVIRONMENT), []

    def expand(word: str) -> str:
        return _EXPANSION.sub(lambda m: environment.get(m[1] or m[2], m[0]), word)

    for words in block_commands(block):
        if len(words) == 1 and re.fullmatch(r"\w+=.*", words[0]):
            name, _, value = words[0].partition("=")
            environment[name] = expand(value)
            continue
        found.append([word for word in map(expand, words) if "$" not in word])
    return found


def inline_commands(path: Path) -> list[tuple[int, list[str]]]:
    """Commands in running text (outside fences and tables): (line, argument list)."""
    found, fenced = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        if fenced or line.lstrip().startswith("|"):
            continue
        found += [(number, shlex.split(span)) for span in INLINE.findall(line) if INLINE_COMMAND.match(span)]
    return found


def tutorial_files(page: Path) -> dict[str, str]:
    """The files a tutorial page defines: title -> the concatenated ```python title=...``` blocks."""
    files: dict[str, list[str]] = {}
    for block in blocks(page):
        if block.lang == "python" and block.title:
            files.setdefault(block.title, []).append(block.text)
    return {title: "\n\n".join(parts) + "\n" for title, parts in files.items()}
