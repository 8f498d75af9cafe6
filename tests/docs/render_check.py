"""Open the built Getting started page in headless Chromium and check that it rendered.

``python tests/docs/render_check.py site`` (run by ``make docs`` after the build): dumps the DOM
and checks the page title and Material's header are in it, and saves a screenshot to
/tmp/docs-getting-started.png (not committed).  Chromium is Debian's ``chromium``; without it the
check is skipped with a message, except with ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCREENSHOT = "/tmp/docs-getting-started.png"


def chromium(*args: str, profile: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", "--window-size=1280,900", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def main(site: str) -> int:
    page = Path(site, "getting-started", "index.html").resolve()
    if not page.exists():
        print(f"render check: {page} is missing; run mkdocs build first", file=sys.stderr)
        return 1
    if not (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")):
        msg = "render check: no chromium on PATH (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            print(msg + " -- CI=true: failing", file=sys.stderr)
            return 1
        print(msg + " -- skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="dataflow-chromium-") as profile:
        dom = chromium("--dump-dom", page.as_uri(), profile=profile)
        if dom.returncode != 0:
            print(f"render check: chromium exited {dom.returncode}\n{dom.stderr[-2000:]}", file=sys.stderr)
            return 1
        html = dom.stdout
        wanted = {"the page title": "<title>Getting started - DataFlow</title>",
                  "Material's header": 'class="md-header',
                  "the first heading": ">Getting started<",
                  "highlighted code": 'class="highlight'}
        missing = [what for what, text in wanted.items() if text not in html]
        if missing:
            print(f"render check: {page} rendered without {', '.join(missing)}", file=sys.stderr)
            return 1
        shot = chromium(f"--screenshot={SCREENSHOT}", page.as_uri(), profile=profile)
        if shot.returncode != 0 or not Path(SCREENSHOT).exists():
            print(f"render check: screenshot failed\n{shot.stderr[-2000:]}", file=sys.stderr)
            return 1
    print(f"render check: {page.name} of getting-started rendered in Chromium ({len(html)} bytes of DOM); "
          f"screenshot {SCREENSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "site"))
