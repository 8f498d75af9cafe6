"""Code blocks of the Markdown documentation (``docs/**/*.md`` and ``README.md``), with the
directives that say how to run them.  Parsing only; running is in ``runner.py``.

A directive is an HTML comment right before a fence (blank lines allowed in between), invisible
both on GitHub and in the built site::

    <!-- doctest: db=postgresql -->          run with the PostgreSQL test server (also mysql, redis)
    <!-- doctest: skip="why it cannot run" -->
    <!-- doctest: fresh -->                  start a new session (namespace, temp dir) here
    <!-- doctest-replace: OLD => NEW -->     textual substitution in the block before it runs
    <!-- doctest-setup
    hidden Python run just before the block, in the same session
    -->

A page is a session: its Python blocks share one namespace and one temporary working directory,
in order.  A ``text`` fence right after a block is the block's expected output (``...`` inside a
line matches anything); without one, ``# -> expected`` comments on a block's lines, in order,
are the expected output lines.  Shell blocks (``bash``/``sh``/``shell``/``console``) run when
every command is the ``dataflow`` CLI; anything else in a shell block needs ``skip=``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = {"python", "py", "python3", "pycon"}
SHELL = {"bash", "sh", "shell", "console"}

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<ticks>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_COMMENT = re.compile(r"^[ \t]*<!--(.*?)-->", re.S | re.M)   # at the start of a line: not `inline` mentions
_ARROW = re.compile(r"#\s*->\s?(.*)$")


@dataclass
class Block:
    page: str            # path relative to the repository root
    line: int            # 1-based line of the opening fence
    lang: str
    code: str
    dbs: tuple = ()
    skip: str | None = None
    fresh: bool = False
    setup: str = ""
    replace: list = field(default_factory=list)
    expected: str | None = None       # from a following text fence
    arrows: list | None = None        # from `# ->` comments

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        return "python" if self.lang in PYTHON else "shell"


def pages() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", *docs]


def _directives(text: str) -> dict:
    """Directives from the comments in ``text`` (the lines between the previous block and a fence)."""
    out: dict = {"dbs": (), "skip": None, "fresh": False, "setup": "", "replace": []}
    for body in _COMMENT.findall(text):
        body = body.strip()
        if body.startswith("doctest-setup"):
            out["setup"] += body[len("doctest-setup"):].strip("\n") + "\n"
        elif body.startswith("doctest-replace:"):
            old, sep, new = body[len("doctest-replace:"):].strip().partition(" => ")
            if not sep:
                raise ValueError(f"doctest-replace needs 'OLD => NEW': {body!r}")
            out["replace"].append((old, new))
        elif body.startswith("doctest:"):
            for tok in shlex.split(body[len("doctest:"):]):
                key, _, value = tok.partition("=")
                if key == "db":
                    out["dbs"] = tuple(v for v in value.split(",") if v)
                elif key == "skip":
                    if not value.strip():
                        raise ValueError("doctest: skip needs a reason: skip=\"...\"")
                    out["skip"] = value
                elif key == "fresh":
                    out["fresh"] = True
                else:
                    raise ValueError(f"unknown doctest directive {key!r}")
    return out


def parse(path: Path) -> tuple[list[Block], int]:
    """(the executable blocks of ``path``, how many display fences -- text/json/no language)."""
    rel = str(path.relative_to(ROOT))
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    displays = 0
    between: list[str] = []
    last: Block | None = None
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            between.append(lines[i])
            i += 1
            continue
        ticks, info, start = m["ticks"], m["info"].strip(), i
        lang = info.split()[0].lower() if info else ""
        body = []
        i += 1
        indent = len(m["indent"])
        while i < len(lines) and not (lines[i].strip().startswith(ticks) and lines[i].strip().strip(ticks[0]) == ""):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        text = "\n".join(body) + "\n"
        gap = "\n".join(between)
        between = []
        if lang in PYTHON or lang in SHELL:
            d = _directives(gap)
            b = Block(rel, start + 1, lang, text, d["dbs"], d["skip"], d["fresh"], d["setup"], d["replace"])
            if b.kind == "python":
                arrows = [am.group(1).rstrip() for line in body if (am := _ARROW.search(line))]
                b.arrows = arrows or None
            blocks.append(b)
            last = b
        else:
            displays += 1
            if lang in ("text", "output") and last is not None and gap.strip() == "" and last.expected is None:
                last.expected = text      # the output of the block just above
            last = None
    return blocks, displays


def shell_commands(block: Block) -> list[list[str]]:
    """The commands of a shell block; a command other than ``dataflow`` raises ValueError."""
    cmds = []
    for line in block.code.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        argv = shlex.split(line, comments=True)
        if argv and argv[0] != "dataflow":
            raise ValueError(f"{block.id}: shell block runs {argv[0]!r}; only `dataflow ...` commands run -- "
                             f"mark it <!-- doctest: skip=\"reason\" -->")
        cmds.append(argv)
    return cmds


def output_matches(expected: str, got: str) -> bool:
    """Line by line after trailing whitespace; ``...`` inside an expected line matches anything."""
    exp = [ln.rstrip() for ln in expected.rstrip().splitlines()]
    out = [ln.rstrip() for ln in got.rstrip().splitlines()]
    if len(exp) != len(out):
        return False
    for e, o in zip(exp, out):
        if "..." in e:
            pattern = ".*".join(re.escape(part) for part in e.split("..."))
            if not re.fullmatch(pattern, o):
                return False
        elif e != o:
            return False
    return True
