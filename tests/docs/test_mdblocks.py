"""The collector's own rules: directives, expected output, shell commands, output matching."""

from __future__ import annotations

import pytest

from . import mdblocks
from .mdblocks import Block, output_matches, parse, shell_commands

PAGE = '''# Page

Mentioned inline, not a directive: `<!-- doctest: skip="no" -->`.

```python
print(1)  # -> 1
```

<!-- doctest: db=postgresql,redis fresh -->
<!-- doctest-replace: a => b -->
<!-- doctest-setup
x = 2
-->
```python
print(x)
```

```text
2
```

<!-- doctest: skip="installs things" -->
```bash
pip install x
```

```
a display block
```
'''


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.setattr(mdblocks, "ROOT", tmp_path)
    p = tmp_path / "page.md"
    p.write_text(PAGE)
    return p


def test_parse_directives_and_outputs(page):
    blocks, displays = parse(page)
    assert [b.line for b in blocks] == [5, 14, 23]
    first, second, third = blocks
    assert first.arrows == ["1"] and first.expected is None and first.skip is None and not first.dbs
    assert second.dbs == ("postgresql", "redis") and second.fresh
    assert second.replace == [("a", "b")] and second.setup.strip() == "x = 2"
    assert second.expected == "2\n" and second.arrows is None
    assert third.kind == "shell" and third.skip == "installs things"
    assert displays == 2            # the output block and the display block


def test_skip_needs_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(mdblocks, "ROOT", tmp_path)
    p = tmp_path / "bad.md"
    p.write_text('<!-- doctest: skip= -->\n```python\npass\n```\n')
    with pytest.raises(ValueError, match="reason"):
        parse(p)


def test_shell_blocks_run_only_the_cli():
    ok = Block("p.md", 1, "bash", "# a comment\ndataflow info\n$ dataflow inspect sqlite:///x.db  # note\n")
    assert shell_commands(ok) == [["dataflow", "info"], ["dataflow", "inspect", "sqlite:///x.db"]]
    with pytest.raises(ValueError, match="doctest: skip"):
        shell_commands(Block("p.md", 1, "bash", "make test\n"))


def test_output_matching():
    assert output_matches("a 1\nb\n", "a 1  \nb\n\n")
    assert output_matches("loaded ... rows in ...s", "loaded 5 rows in 0.01s")
    assert not output_matches("loaded ... rows", "stored 5 rows")
    assert not output_matches("a\nb", "a")
