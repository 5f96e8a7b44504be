"""The committed report page in a real browser: headless Chromium loads it, every figure decodes
(naturalWidth > 0), every paper section is present, and a screenshot is taken.

Chromium is found on PATH; when it is missing and the test runs as root on a Debian-like system, it is
installed with ``apt-get install chromium`` (Debian's package; set ``OPTVERIFY_NO_APT=1`` to forbid
that). Where no browser can be had the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .report_html import parse_page

PAGE = Path(__file__).resolve().parents[2] / "results" / "report" / "report.html"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: appended to a copy of the page (the committed page has no script): the browser's own view of it
PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    return {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight};
  });
  var sections = Array.prototype.map.call(document.querySelectorAll("section.paper"), function (s) {
    return {id: s.id, rows: s.querySelectorAll("tr[data-verdict]").length, visible: s.offsetHeight > 0};
  });
  var out = document.createElement("pre");
  out.id = "browser-probe";
  out.textContent = JSON.stringify({images: images, sections: sections,
                                    summaryRows: document.querySelectorAll("#summary tbody tr").length});
  document.body.appendChild(out);
});
</script>"""


def _apt_install() -> str:
    """Try Debian's chromium; return the log tail (for the skip reason) when it does not appear."""
    if os.environ.get("OPTVERIFY_NO_APT"):
        return "OPTVERIFY_NO_APT is set"
    if not shutil.which("apt-get"):
        return "no apt-get on this system"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "not root, so apt-get cannot install chromium (install it, or run as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = ""
    for cmd in (["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                ["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(cmd)}: {exc}"
        log = (done.stdout + done.stderr)[-400:]
        if cmd[1] == "install" and done.returncode == 0 and _find():
            return ""
    return f"apt-get could not install chromium: {log.strip()}"


def _find() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> str:
    path = _find()
    if path is None:
        why = _apt_install()
        path = _find()
        if path is None:
            pytest.skip(f"no headless browser: {why}")
    return path


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def probe(browser: str, html: str, tmp_path: Path) -> dict:
    """Load ``html`` (with the probe script appended) and return what the browser saw."""
    copy = tmp_path / "report_probe.html"
    copy.write_text(html.replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    done = _run(browser, tmp_path / "profile", "--virtual-time-budget=30000", "--dump-dom", copy.as_uri())
    found = re.search(r'<pre id="browser-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading in {browser}: {done.stderr[-800:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&"))


def broken_images(seen: dict) -> list[str]:
    return [img["alt"] for img in seen["images"] if not (img["complete"] and img["width"] > 0 and img["height"] > 0)]


def test_every_figure_renders_and_every_section_is_present(browser, tmp_path):
    html = PAGE.read_text(encoding="utf-8")
    expected = parse_page(html)
    seen = probe(browser, html, tmp_path)
    assert len(seen["images"]) == len(expected.images) > 0
    assert broken_images(seen) == []
    assert [(img["width"], img["height"]) for img in seen["images"]] == \
        [(img["width"], img["height"]) for img in expected.images]
    assert [s["id"] for s in seen["sections"]] == expected.sections
    assert all(s["visible"] and s["rows"] > 0 for s in seen["sections"])
    assert seen["summaryRows"] == len(expected.sections) + 1  # one per paper and the total


def test_the_probe_sees_a_figure_that_does_not_decode(browser, tmp_path):
    html = PAGE.read_text(encoding="utf-8")
    start = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    spoiled = html[:start] + "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB" + html[start + 64:]  # a PNG header, then garbage
    seen = probe(browser, spoiled, tmp_path)
    assert len(broken_images(seen)) == 1


def test_a_screenshot_of_the_page_is_not_blank(browser, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    done = _run(browser, tmp_path / "profile", "--window-size=1280,2000", f"--screenshot={shot}", PAGE.as_uri())
    assert shot.is_file(), f"no screenshot: {done.stderr[-800:]}"
    with Image.open(shot) as img:
        assert img.size == (1280, 2000)
        colours = img.convert("L").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 16  # text, tables and badges, not an empty page
