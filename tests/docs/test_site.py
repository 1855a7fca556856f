"""The documentation site builds with ``mkdocs build --strict`` and renders in a real browser.

The browser is Debian's chromium, headless: the home page and one API page are loaded from a local
HTTP server, and the DOM *after* the site's JavaScript ran must hold the navigation, the search box
and the page's content; a screenshot of each must show a drawn page.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request

import pytest
from docs_markdown import DOCS, REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (apt-get install -y chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                           capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join(timeout=10)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def chromium(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=5000", *arguments], capture_output=True, text=True, timeout=180)


def test_every_page_is_built_and_the_api_pages_hold_their_symbols(site):
    for page in DOCS.rglob("*.md"):
        if page.parent.name not in ("benchmarks", "precision_parity") and "figures" not in page.parts:
            assert (site / page.relative_to(DOCS).with_suffix(".html")).is_file(), page
    api = (site / "reference" / "methods.html").read_text()
    for symbol in ("sslprobe.methods.base.SSLMethod", "sslprobe.methods.simclr.SimCLR", "embed"):
        assert f'id="{symbol}' in api or f"id=\"sslprobe.methods.base.SSLMethod.{symbol}" in api, symbol
    assert "sslprobe.probes.landscape" in (site / "reference" / "probes.html").read_text()
    studies = (site / "reference" / "studies.html").read_text()
    for symbol in ("linear_probe_check.compare_linear_probes", "precision_parity.aggregate",
                   "theory_trajectory.write_trajectory"):  # what scripts/ run
        assert f'id="sslprobe.studies.{symbol}"' in studies, symbol


@needs_chromium
@pytest.mark.parametrize(("page", "content"), [
    ("index.html", "measures <em>why</em> representations"),
    ("reference/methods.html", 'id="sslprobe.methods.base.SSLMethod"'),
])
def test_page_renders_with_navigation_search_and_content(site, server, page, content, tmp_path):
    url = f"{server}/{page}"
    rendered = chromium("--dump-dom", url)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    dom, static = rendered.stdout, (site / page).read_text()
    # The site's JavaScript ran: it marks the document and adds a copy button to every code block.
    assert 'class="no-js"' in static and 'class="no-js"' not in dom
    assert "md-code__button" not in static
    assert ("md-code__button" in dom) == ("<pre" in static)
    # Navigation with the site's sections, a search box, and the page's own content.
    assert 'class="md-nav' in dom
    for section in ("Getting started", "User guide", "Probes", "Theory", "Extending", "API reference"):
        assert re.search(rf">\s*{section}\s*<", dom), section
    assert 'data-md-component="search-query"' in dom and 'placeholder="Search"' in dom
    assert content in dom
    # What the search box searches: the index holds the prose pages and the API.
    with urllib.request.urlopen(f"{server}/search/search_index.json", timeout=30) as response:
        index = json.load(response)
    texts = {entry["location"].split("#")[0]: entry["text"] for entry in index["docs"]}
    assert any("SSLMethod" in text for location, text in texts.items() if location.startswith("reference/methods"))
    assert any("effective rank" in text for location, text in texts.items() if location.startswith("probes/spectrum"))
    # A screenshot shows a drawn page (not a blank one): many distinct colours.
    shot = tmp_path / "page.png"
    assert chromium("--window-size=1280,900", f"--screenshot={shot}", url).returncode == 0
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (900, 1280)
    assert len({tuple(p) for p in pixels[::7, ::7, :3].reshape(-1, 3).round(2).tolist()}) > 20
