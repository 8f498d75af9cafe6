"""`make demo` / `dataflow demo`: each step shows the code it ran, and the run ends with what next."""

from dataflow import demo


def test_demo_shows_code_and_where_next(capsys):
    assert demo.main(rows=50) == 0
    out = capsys.readouterr().out
    assert '>>> await db.express.create("User"' in out and "-> Ada has id 1" in out
    assert ">>> LocalRuntime().execute(" in out and "-> Linus" in out
    assert out.rstrip().splitlines()[-1].strip().startswith("(pip install") and "Where next:" in out
