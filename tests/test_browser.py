"""A real browser loads a real page through the server: headless Chromium, no extra packages.

The generated site has a 1 MB page with 180 images (PNG, upper-case .PNG, JPEG, GIF, SVG,
names with spaces and dots, one image past the memory-cache size so it goes out with
sendfile), a stylesheet and a script. An inline script waits for the window's load event,
checks that every image decoded, that the stylesheet applied and that the external script
ran, and writes a verdict into the DOM, which ``chromium --dump-dom`` prints. The same script
reads the browser's own account of every transfer (Resource Timing: encoded against decoded
body size) to report which answers arrived gzip-encoded: the page, the stylesheet, the script
and the SVG images must, the raster images must not. A second page references a missing image,
to prove that the verdict does fail when a sub-resource fails.

With CI=true a missing Chromium fails the test; elsewhere it is skipped.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from support import png, running_server

IMAGES = 180
VERDICT = re.compile(r'<pre id="verdict">(.*?)</pre>', re.DOTALL)

# a 4x4 baseline JPEG (drawn by Chromium on a canvas, its ICC profile stripped)
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4R"
    "DgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU"
    "FBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAAEAAQDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAA"
    "AAj/xAAZEAADAQEBAAAAAAAAAAAAAAAAAQIDETH/xAAVAQEBAAAAAAAAAAAAAAAAAAAFCf/EABwRAQACAgMBAAAA"
    "AAAAAAAAAAECAwAhBBExQf/aAAwDAQACEQMRAD8AlrLKcYUQuSvEAAuyyd05WWSWS9q7VfVfq5QCmmvj1xppiRhE"
    "AA6ANABoA0B5n//Z")
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


def svg(n: int) -> bytes:
    """An SVG above gzip_min_length (1 KiB), so that it is sent gzip-encoded."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
            f'<desc>{"a square of one colour, drawn for the browser test. " * 24}</desc>'
            f'<rect width="8" height="8" fill="#{n * 997 % 0xFFFFFF:06x}"/></svg>').encode()


def image_files() -> dict[str, bytes]:
    """180 images with the names and formats a real site has."""
    files: dict[str, bytes] = {}
    for n in range(IMAGES - 1):
        kind = n % 6
        if kind == 0:
            files[f"img {n:03d}.png"] = png(8, 8, bytes([n % 256, 80, 200 - n % 100]) * 64)
        elif kind == 1:
            files[f"thumb.v2.{n:03d}.PNG"] = png(16, 4, bytes([30, n % 256, 90]) * 64)
        elif kind == 2:
            files[f"photo-{n:03d}.JPG"] = JPEG
        elif kind == 3:
            files[f"photo-{n:03d}.jpeg"] = JPEG
        elif kind == 4:
            files[f"dot_{n:03d}.gif"] = GIF
        else:
            files[f"shape {n:03d}.svg"] = svg(n)
    # incompressible, so larger than the 256 KiB memory cache: served with sendfile
    files["big noise.png"] = png(300, 300, os.urandom(300 * 300 * 3))
    return files


# both above gzip_min_length, so that they are sent gzip-encoded
CSS = b"""
body { font-family: sans-serif; margin: 1em; }
#css-probe { width: 123px; height: 7px; background: #4a7; }
.gallery img { width: 24px; height: 24px; margin: 1px; }
""" + b"".join(b".unused-%d { margin: %dpx; }\n" % (n, n) for n in range(60))
JS = b"""
window.appScriptRan = true;
document.documentElement.setAttribute("data-app", "loaded");
""" + b"".join(b"function unused%d() { return %d; }\n" % (n, n) for n in range(60))

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>browser check</title>
<link rel="stylesheet" href="css/site%20style.css">
<script src="js/app.v1.js"></script>
</head><body>
<h1>A page with {count} images</h1>
<div id="css-probe"></div>
<div class="gallery">{images}</div>
{filler}
<pre id="verdict">PENDING</pre>
<script>
window.addEventListener("load", function () {{
  var problems = [];
  var images = document.querySelectorAll("img");
  for (var i = 0; i < images.length; i++) {{
    var img = images[i];
    if (!(img.complete && img.naturalWidth > 0)) problems.push("image " + img.getAttribute("src"));
  }}
  var probe = getComputedStyle(document.getElementById("css-probe")).width;
  if (probe !== "123px") problems.push("stylesheet not applied (width " + probe + ")");
  if (window.appScriptRan !== true) problems.push("script did not run");
  // what the browser itself received: an encoded size below the decoded one means gzip
  var gzipped = [], svgs = 0, raster = 0;
  function encoded(entry) {{
    return entry.encodedBodySize > 0 && entry.encodedBodySize < entry.decodedBodySize;
  }}
  var page = performance.getEntriesByType("navigation")[0];
  if (page && encoded(page)) gzipped.push("page");
  performance.getEntriesByType("resource").forEach(function (entry) {{
    var path = decodeURIComponent(new URL(entry.name).pathname);
    if (/[.](css|js)$/.test(path)) {{
      if (encoded(entry)) gzipped.push(path.split(".").pop());
      else problems.push("not gzip-encoded: " + path);
    }} else if (/[.]svg$/.test(path)) {{
      if (encoded(entry)) svgs++;
      else problems.push("not gzip-encoded: " + path);
    }} else if (encoded(entry)) {{
      problems.push("gzip-encoded raster image: " + path);
    }} else {{
      raster++;
    }}
  }});
  document.getElementById("verdict").textContent = problems.length
    ? "FAIL " + problems.join("; ")
    : "OK " + images.length + " images, css, js; gzip: " + gzipped.join(", ") + ", "
      + svgs + " svg; identity: " + raster + " raster";
}});
</script>
</body></html>
"""


def quote(name: str) -> str:
    return name.replace(" ", "%20")


def build_site(root: Path, extra_images: tuple[str, ...] = ()) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "css").mkdir()
    (root / "js").mkdir()
    images = image_files()
    for name, data in images.items():
        (root / "images" / name).write_bytes(data)
    (root / "css" / "site style.css").write_bytes(CSS)
    (root / "js" / "app.v1.js").write_bytes(JS)
    tags = "".join(f'<img src="images/{quote(name)}" alt="{n}">'
                   for n, name in enumerate([*images, *extra_images]))
    paragraph = "<p>" + "Filler text so that the page weighs a megabyte. " * 40 + "</p>\n"
    filler = paragraph * (1024 * 1024 // len(paragraph))
    page = PAGE.format(count=len(images) + len(extra_images), images=tags, filler=filler)
    (root / "index.html").write_text(page, encoding="utf-8")
    broken = PAGE.format(count=len(images) + 1, filler="",
                         images=tags + '<img src="images/missing.png" alt="missing">')
    (root / "broken.html").write_text(broken, encoding="utf-8")
    return root


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium")
                                        else None)
    if path is None:
        message = "chromium is not installed (Debian package 'chromium'; tests/run.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def render(url: str, profile: Path) -> str:
    """The DOM after the page loaded (plus a virtual-time budget for its scripts)."""
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--no-proxy-server", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def verdict(dom: str) -> str:
    match = VERDICT.search(dom)
    assert match, dom[-2000:]
    return match.group(1)


def fetched_images(log: str) -> set[str]:
    return set(re.findall(r'"GET /images/(\S+) HTTP/1\.1" 200 ', log))


def wait_for_log(server, timeout: float = 5.0) -> str:
    """The access log once every image is in it (each worker flushes its own once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.access_log.read_text()
        if len(fetched_images(text)) >= IMAGES or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory: pytest.TempPathFactory):
    chromium()
    site = build_site(tmp_path_factory.mktemp("browser-site") / "www")
    with running_server(tmp_path_factory.mktemp("browser"), [], document_root=site,
                        workers=2) as server:
        yield server


def test_page_with_css_js_and_180_images_renders_fully(browser_server, tmp_path: Path) -> None:
    page = browser_server.get("/")
    assert len(page.content) > 1024 * 1024
    dom = render(browser_server.url("/"), tmp_path / "profile")
    names = image_files()
    svgs = sum(name.endswith(".svg") for name in names)
    assert svgs > 0
    assert verdict(dom) == (f"OK {IMAGES} images, css, js; gzip: page, css, js, {svgs} svg; "
                            f"identity: {IMAGES - svgs} raster")
    # the browser really fetched everything from us, each file once and whole
    log = wait_for_log(browser_server)
    assert len(fetched_images(log)) == IMAGES
    assert re.search(r'"GET /images/big%20noise\.png HTTP/1\.1" 200 \d{6}', log)
    assert '"GET /css/site%20style.css HTTP/1.1" 200' in log
    assert '"GET /js/app.v1.js HTTP/1.1" 200' in log
    # the server's side of it: the megabyte page went out as a few kilobytes
    sent = re.search(r'"GET / HTTP/1\.1" 200 (\d+)', log)
    assert sent and int(sent.group(1)) < len(page.content) // 20


def test_a_missing_image_fails_the_verdict(browser_server, tmp_path: Path) -> None:
    dom = render(browser_server.url("/broken.html"), tmp_path / "profile")
    assert verdict(dom) == "FAIL image images/missing.png"
