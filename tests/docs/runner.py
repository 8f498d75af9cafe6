"""Running documentation blocks: one session per page (a namespace, a temporary working
directory, private server databases), blocks in order, output compared where the page shows it.

Server blocks (``<!-- doctest: db=postgresql -->``) get a database of their own, created for
the session and dropped after it: the page's URL ``postgresql://postgres@127.0.0.1[:5432]/test``
(or ``mysql://root@127.0.0.1[:3306]/test``) is rewritten to it, so examples may use short table
names like ``users`` without meeting another test's tables.  An unreachable server skips the
block, except with ``CI=true``, where it fails.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
import uuid
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import pytest

from dataflow.testing.fixtures import reachable

from .mdblocks import ROOT, Block, output_matches, shell_commands

PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MY_URL = os.environ.get("DATAFLOW_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
SERVERS = {"postgresql": PG_URL, "mysql": MY_URL, "redis": REDIS_URL}
DOC_URLS = {"postgresql": re.compile(r"postgresql://(?P<user>[\w-]+)@127\.0\.0\.1(?::5432)?/test\b"),
            "mysql": re.compile(r"mysql://(?P<user>[\w-]+)@127\.0\.0\.1(?::3306)?/test\b"),
            "redis": re.compile(r"redis://127\.0\.0\.1:6379/0\b")}

#: what happened to each block, for the summary line (conftest.py prints it)
OUTCOMES: Counter = Counter()
SKIPS: Counter = Counter()


def _with_database(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


def _as_user(url: str, user: str | None) -> str:
    """``url`` (the session's private database) as the user the page's URL names."""
    p = urlsplit(url)
    if not user or user == p.username:
        return url
    host = p.netloc.rpartition("@")[2]
    return urlunsplit((p.scheme, f"{user}@{host}", p.path, p.query, p.fragment))


class Session:
    """One page (or the part of it after a ``fresh`` directive)."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="dataflow-docs-")
        # a real module, so annotations and pickling resolve names as in a user's own module
        self.module = types.ModuleType(f"dataflow_docs_{uuid.uuid4().hex[:8]}")
        sys.modules[self.module.__name__] = self.module
        self.ns: dict = self.module.__dict__
        self.urls: dict = {}            # server kind -> URL of the session's private database
        from dataflow.nodes.registry import LIVE
        self._before = set(id(v) for v in LIVE.values())

    # -- servers -------------------------------------------------------------------------------
    def url(self, kind: str) -> str:
        if kind in self.urls:
            return self.urls[kind]
        base = SERVERS[kind]
        if not reachable(base):
            msg = f"{kind} server not reachable at {base}"
            if IN_CI:
                pytest.fail(msg + " (CI=true: a missing server is a failure)")
            SKIPS[f"{kind} server not reachable"] += 1
            pytest.skip(msg)
        if kind == "redis":
            self.urls[kind] = base
            return base
        name = f"docs_{uuid.uuid4().hex[:10]}"
        self._admin(base, f"CREATE DATABASE {name}")
        self.urls[kind] = _with_database(base, name)
        return self.urls[kind]

    @staticmethod
    def _admin(url: str, sql: str) -> None:
        from dataflow import DataFlow
        from dataflow._loop import run_sync

        admin = DataFlow(url, pool_size=1, auto_migrate=False)
        try:
            run_sync(admin.execute_raw(sql))
        finally:
            admin.close()

    # -- running -------------------------------------------------------------------------------
    def prepare(self, block: Block, code: str | None = None) -> str:
        replace = block.replace if code is None else []
        code = block.code if code is None else code
        for old, new in replace:
            if old not in code:
                raise AssertionError(f"{block.id}: doctest-replace text {old!r} is not in the block")
            code = code.replace(old, new)
        for kind in block.dbs:
            if kind not in SERVERS:
                raise AssertionError(f"{block.id}: unknown db={kind!r} (postgresql, mysql, redis)")
            url = self.url(kind)
            code = DOC_URLS[kind].sub(lambda m, url=url: _as_user(url, m.groupdict().get("user")), code)
        return code

    def run(self, block: Block) -> None:
        code = self.prepare(block)
        out = io.StringIO()
        cwd = os.getcwd()
        os.chdir(self.tmp)
        sys.path.insert(0, self.tmp)
        try:
            if block.kind == "python":
                if block.setup:
                    self._exec(block, self.prepare(block, block.setup), io.StringIO(), first_line=block.line - block.setup.count("\n") - 1)
                self._exec(block, code, out, first_line=block.line)
            else:
                self._shell(block, code, out)
        finally:
            sys.path.remove(self.tmp)
            os.chdir(cwd)
        got = out.getvalue()
        if block.expected is not None and block.arrows is not None:
            raise AssertionError(f"{block.id}: both a text block and `# ->` comments give the output; keep one")
        if block.expected is not None:
            expected = block.expected
        elif block.arrows is not None:
            expected = "\n".join(block.arrows) + "\n"
        else:
            return
        if not output_matches(expected, got):
            raise AssertionError(f"{block.id}: printed output differs from the page\n--- page ---\n{expected}"
                                 f"--- printed ---\n{got}")

    def _exec(self, block: Block, code: str, out, first_line: int) -> None:
        # padded so tracebacks point at the Markdown line
        src = "\n" * max(first_line, 0) + code
        compiled = compile(src, block.page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        with contextlib.redirect_stdout(out):
            if compiled.co_flags & inspect.CO_COROUTINE:
                from dataflow._loop import _thread_loop
                _thread_loop().run_until_complete(eval(compiled, self.ns))
            else:
                exec(compiled, self.ns)

    def _shell(self, block: Block, code: str, out) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), self.tmp, env.get("PYTHONPATH", "")])
        for argv in shell_commands(Block(block.page, block.line, block.lang, code)):
            proc = subprocess.run([sys.executable, "-m", "dataflow", *argv[1:]], cwd=self.tmp, env=env,
                                  capture_output=True, text=True, timeout=120)
            out.write(proc.stdout)
            if proc.returncode != 0:
                raise AssertionError(f"{block.id}: `{' '.join(argv)}` exited {proc.returncode}\n"
                                     f"{proc.stdout}\n{proc.stderr}")

    def close(self) -> None:
        from dataflow.nodes.registry import LIVE

        try:
            for db in [v for v in list(LIVE.values()) if id(v) not in self._before]:
                with contextlib.suppress(Exception):
                    db.close()
            for kind, url in self.urls.items():
                if kind != "redis":
                    name = urlsplit(url).path.lstrip("/")
                    drop = f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if kind == "postgresql" else "")
                    self._admin(SERVERS[kind], drop)
        finally:
            sys.modules.pop(self.module.__name__, None)
            self.ns.clear()
            shutil.rmtree(self.tmp, ignore_errors=True)
