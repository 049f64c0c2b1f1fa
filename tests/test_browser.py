"""The example report in a real browser: headless Chromium, driven over the DevTools protocol.

It must load with no console errors and no network requests, show the verdict and the gate
table, and leave a screenshot behind as a test artifact (``reports/test-artifacts/``). Skips,
with the reason, only where Chromium is not installed (`.ci/run` installs Debian's package).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from audit.report.writer import write_report

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "reports" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (on Debian: apt-get "
                                                "install chromium; .ci/run does this)"),
]


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(url, timeout=20)
        self.events: list[dict[str, Any]] = []
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.events.append(json.loads(self.ws.recv()))


@pytest.fixture
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1200,900",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.skip(f"Chromium did not start (exit code {proc.poll()})")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.loads(resp.read())
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        yield tools
        tools.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_example_report_in_headless_chromium(browser: DevTools, arrests_report: Any,
                                             tmp_path: Path) -> None:
    report = arrests_report
    html_path = write_report(report, report_dir=tmp_path).html
    url = html_path.resolve().as_uri()
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired")
    state = browser.call("Runtime.evaluate", returnByValue=True, expression="""(() => {
        const v = document.getElementById('verdict');
        const rows = document.querySelectorAll('#gates tbody tr');
        const r = v.getBoundingClientRect();
        return {verdict: v.innerText, visible: r.width > 0 && r.height > 0 && r.top < innerHeight,
                rows: rows.length, gatesVisible: document.getElementById('gates').offsetHeight > 0,
                svgs: document.querySelectorAll('svg').length,
                scripts: document.querySelectorAll('script').length};
    })()""")["result"]["value"]
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    artifact = ARTIFACTS / "arrests-report.png"
    artifact.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot: {artifact}")

    requests = [e["params"]["request"]["url"] for e in browser.events
                if e.get("method") == "Network.requestWillBeSent"]
    assert [r for r in requests if r != url] == [], "the report must not fetch anything"
    errors = [e for e in browser.events
              if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []
    assert state["verdict"] == report.verdict.upper() and state["visible"]
    assert state["gatesVisible"] and state["rows"] == sum(max(len(c.gates), 1) for c in report.checks)
    assert state["svgs"] >= 2 and state["scripts"] == 0
    assert artifact.stat().st_size > 10_000
