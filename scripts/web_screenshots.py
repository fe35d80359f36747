"""Screenshots of the web page (idle, working, result) at desktop and phone sizes, for docs/ and the README.

Drives Debian's Chromium (playwright, `executable_path`; no browser download) through one real job per size
against a running service, so the pictures show what a person sees: the bundled example vocal, a real
accompaniment and its waveform. Run it against any running API + worker, for example:

    redis-server --port 6390 --save '' &
    SINGSONG_REDIS_URL=redis://127.0.0.1:6390/0 SINGSONG_AUTH=open singsong serve --port 8010 &
    SINGSONG_REDIS_URL=redis://127.0.0.1:6390/0 SINGSONG_ENGINE=pipelines.inference.accompanist:load_engine \
        singsong worker &
    .venv/bin/python scripts/web_screenshots.py --url http://127.0.0.1:8010 --out docs

PNG files are reduced to a 256-colour palette (Pillow), which keeps them small without visible loss on a
flat UI.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def shoot(page: Page, path: Path, element: str | None = None) -> None:
    if element:  # the card that matters at the top of the screen, as after the page's own scrolling
        page.evaluate(f"document.querySelector('{element}').scrollIntoView({{block: 'start'}})")
        page.evaluate("window.scrollBy(0, -12)")
    else:
        page.evaluate("window.scrollTo(0, 0)")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=path)
    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} kB)")


def run(page: Page, url: str, vocal: Path, key: str, out: Path, size: str, guidance: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    if key:
        page.fill("#api-key", key)
    shoot(page, out / f"web-{size}-idle.png")
    page.click("#tab-upload")
    page.set_input_files("#file", str(vocal))
    page.wait_for_function("() => /\\d/.test(document.getElementById('vocal-duration').textContent)")
    page.click("#advanced summary")
    page.fill("#opt-seed", "7")
    page.fill("#opt-guidance", guidance)
    page.click("#advanced summary")
    page.click("#submit")
    working = "() => document.body.dataset.state === 'working' && document.getElementById('progress').value >= 0.3"
    page.wait_for_function(working, timeout=300_000)
    shoot(page, out / f"web-{size}-working.png", "#status" if size == "phone" else None)
    page.wait_for_selector("#wave[data-drawn='2']", timeout=300_000)
    shoot(page, out / f"web-{size}-result.png", "#result" if size == "phone" else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--vocal", type=Path, default=REPO / "pipelines/inference/examples/vocal.flac")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--guidance", default="3", help="classifier-free guidance (scripts/demo.sh uses 3)")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium)
        for size, viewport in SIZES.items():
            context = browser.new_context(viewport=viewport, color_scheme="light")
            page = context.new_page()
            page.set_default_timeout(60_000)
            run(page, args.url, args.vocal, args.api_key, args.out, size, args.guidance)
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
