"""Headless Chromium for the tests that open a report as a user sees it: the binary (None where
neither ``chromium`` nor ``chromium-browser`` is on PATH), one run with a throwaway profile,
and the probe a page copy gets to say what the browser made of it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# A PNG that cannot decode: the probe must report it as broken, or it could not see one.
BROKEN = "data:image/png;base64,iVBORw0KGgoAAAAN"

# Appended to a copy of the page: once everything has loaded, what the browser made of it goes
# into document.title, which --dump-dom prints.
PROBE = f"""
<img id="probe-broken" src="{BROKEN}" alt="probe-broken">
<script>
window.addEventListener("load", () => {{
  const images = Array.from(document.images, (img) => {{
    // the mean of every decoded RGBA value: a PNG cut short decodes to rows of nothing
    let mean = null;
    if (img.naturalWidth > 0) {{
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const context = canvas.getContext("2d");
      context.drawImage(img, 0, 0);
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      let sum = 0;
      for (const value of pixels) sum += value;
      mean = sum / pixels.length;
    }}
    return {{
      alt: img.alt, complete: img.complete, width: img.naturalWidth,
      height: img.naturalHeight, mean, shown: img.width * img.height,
    }};
  }});
  const tables = Array.from(document.querySelectorAll("table"), (table) => {{
    let heading = table.previousElementSibling;
    while (heading && !/^H[1-6]$/.test(heading.tagName)) heading = heading.previousElementSibling;
    return {{
      heading: heading ? heading.textContent : null,
      headers: Array.from(table.tHead.rows[0].cells, (c) => c.textContent),
      first_column: Array.from(table.tBodies[0].rows, (r) => r.cells[0].textContent),
      shown: table.offsetWidth * table.offsetHeight,
      right: table.getBoundingClientRect().right,
    }};
  }});
  const text = document.body.innerText;
  const body = document.body.getBoundingClientRect().right;
  const page = {{
    content_right: body - parseFloat(getComputedStyle(document.body).paddingRight),
    scroll_width: document.documentElement.scrollWidth,
  }};
  document.title = JSON.stringify({{ images, tables, text, page }});
}});
</script>
"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    """One headless Chromium run with its own throwaway profile; fails the test on a crash."""
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # tests and CI run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers with a small /dev/shm
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result
