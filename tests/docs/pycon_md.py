"""A Markdown extension for the API reference: doctest examples in docstrings (``>>>`` lines and
their output) become ``pycon`` code blocks instead of nested block quotes.

Loaded by mkdocs.yml as ``tests.docs.pycon_md``; docstrings stay plain doctest, as Python's own
tooling expects.
"""

from __future__ import annotations

import re

from markdown import Extension
from markdown.preprocessors import Preprocessor

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


class _Pycon(Preprocessor):
    def run(self, lines):
        out, i, fence = [], 0, None
        while i < len(lines):
            line = lines[i]
            m = _FENCE.match(line)
            if m:
                fence = None if fence and m.group(1).startswith(fence) else (fence or m.group(1))
            if fence is None and line.lstrip().startswith(">>>"):
                indent = line[: len(line) - len(line.lstrip())]
                block = []
                while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
                    block.append(lines[i][len(indent):])
                    i += 1
                if out and out[-1].strip():
                    out.append("")
                out += [indent + "```pycon", *(indent + b for b in block), indent + "```", ""]
                continue
            out.append(line)
            i += 1
        return out


class PyconExtension(Extension):
    def extendMarkdown(self, md):
        md.preprocessors.register(_Pycon(md), "dataflow_pycon", 40)


def makeExtension(**kwargs):
    return PyconExtension(**kwargs)
