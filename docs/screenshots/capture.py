"""Re-take the README's screenshots of the web view (needs Playwright and /usr/bin/chromium).

    python docs/screenshots/capture.py

Runs the demo into a temporary store, serves the web view on 127.0.0.1 and saves
``sessions.png`` (the session list) and ``session.png`` (a session with its trace tree
expanded and an llm span's transcript open) next to this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from galileo_sessions.ui import UiServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GALILEO_")}
        env.update(GALILEO_SESSIONS_STORE=f"{tmp}/store.db",
                   GALILEO_SESSIONS_SPOOL_DIR=f"{tmp}/spool")
        subprocess.run([sys.executable, str(ROOT / "examples" / "support_agent.py")], env=env,
                       check=True, capture_output=True, cwd=ROOT)
        with UiServer(f"{tmp}/store.db") as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 640},
                                    device_scale_factor=1)
            page.goto(server.url + "/")
            page.screenshot(path=str(HERE / "sessions.png"), full_page=True)
            page.goto(server.url + "/?external_id=bob")
            page.locator("tr.session-row").first.locator("a.session-link").click()
            page.locator("details.type-llm > summary").first.click()
            page.locator("details.type-tool > summary").first.click()
            page.screenshot(path=str(HERE / "session.png"), full_page=True)
            browser.close()
    print(f"saved {HERE / 'sessions.png'} and {HERE / 'session.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
