"""The report renders in a real browser: headless Chromium loads every embedded figure.

Run by ``make test-integration`` (``pytest -m integration``); skipped when Debian's ``chromium``
is not installed. The report itself has no script: the test adds a tiny inline one to a copy of
the page that, on the load event, draws each image to a canvas and records its size, the
fraction of opaque pixels and the spread of its colours in a data attribute, which
``--dump-dom`` shows. Nothing is fetched: the page references no URL, and DNS is mapped to
nowhere for good measure.
"""

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from weightscape.reproduce import run_reproduce

from ..plots._html import assert_not_blank, embedded_images

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# For each image: "WxH:<fraction of opaque pixels>:<range of R+G+B>", drawn through a canvas.
# naturalWidth alone is not enough: a truncated PNG still reports its header's size, but its
# undecoded rows are transparent.
_CHECK = """<script>
window.addEventListener('load', function () {
  var out = Array.prototype.map.call(document.images, function (img) {
    if (!img.complete || img.naturalWidth === 0) return 'none';
    var c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    var g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    var d = g.getImageData(0, 0, c.width, c.height).data;
    var opaque = 0, lo = 765, hi = 0;
    for (var i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 255) opaque++;
      var v = d[i] + d[i + 1] + d[i + 2];
      if (v < lo) lo = v; if (v > hi) hi = v;
    }
    return c.width + 'x' + c.height + ':' + (opaque / (d.length / 4)).toFixed(4) + ':' + (hi - lo);
  });
  document.body.setAttribute('data-images', out.join(','));
});
</script></body>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def report(toys, tmp_path, capsys):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    result = run_reproduce("all", "smoke", tmp_path / "out")
    capsys.readouterr()
    return result.report


def test_every_figure_renders_in_chromium(report, tmp_path):
    page = report.read_text()
    want = [img.size for img in embedded_images(page)]
    assert len(want) == 2
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", _CHECK, 1))
    proc = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", checked.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'data-images="([^"]*)"', proc.stdout)
    assert m, "the load-event check did not run: " + proc.stdout[:500]
    got = [s.split(":") for s in m.group(1).split(",")]
    assert [g[0] for g in got] == [f"{w}x{h}" for w, h in want]  # each at its PNG size
    for size, opaque, spread in got:
        # matplotlib's PNGs have an opaque white background: every pixel decoded is opaque
        assert float(opaque) == 1.0, (size, opaque)
        assert int(spread) > 0, size  # not one flat colour


def test_screenshot_of_report_is_not_blank(report, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    img = Image.open(io.BytesIO(shot.read_bytes()))
    img.load()
    assert img.size == (1200, 2400)
    assert_not_blank(img)
    # The figures are drawn: a good share of the page is neither white nor near-white.
    grey = np.asarray(img.convert("L"), dtype=float)
    assert (grey < 200).mean() > 0.01
