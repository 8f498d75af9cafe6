"""``dataflow serve --module ...`` in a subprocess: it serves the module's products on the port
it prints and exits 0 on SIGTERM after stopping the fabric."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

httpx = pytest.importorskip("httpx")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_dataflow_serve(tmp_path):
    (tmp_path / "fabapp.py").write_text(textwrap.dedent(f"""
        from dataflow import DataFlow
        db = DataFlow("sqlite:///{tmp_path}/app.db")

        @db.model
        class Item:
            name: str

        @db.product("count", depends_on=["Item"])
        async def count(ctx):
            return await ctx.express.count("Item")
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, str(tmp_path)])}
    proc = subprocess.Popen([sys.executable, "-m", "dataflow", "serve", "--module", "fabapp", "--port", "0"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/fabric/", line)
        assert m, line + proc.stderr.read() if proc.poll() is not None else line
        base = f"http://127.0.0.1:{m.group(1)}"
        with httpx.Client(base_url=base) as c:
            for _ in range(100):
                r = c.get("/fabric/count")
                if r.status_code == 200:
                    break
            assert r.json() == {"data": 0}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dataflow_serve_several_workers_need_coordination(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dataflow", "serve", "--module", "x", "--workers", "2"],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 2 and "--coordination" in r.stderr
