"""The browser page at `/`, driven in a real headless Chromium against a live API + worker + redis-server.

Chromium is Debian's (`apt-get install chromium`; `.ci/run` installs it), driven by playwright through
`executable_path`: no browser is downloaded. Its fake media devices stand in for a microphone
(`--use-file-for-fake-audio-capture` plays a WAV file into getUserMedia). The browser is launched once per
module; each test gets its own context (cookies, localStorage) and its own server settings.

No fixed sleeps: every wait is for a state the page announces (`body[data-state]`, element contents, media
metadata). Every page is also checked for script errors and Content-Security-Policy violations, which
Chromium reports on the console.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import soundfile as sf
from playwright.sync_api import Browser, Page, sync_playwright

from service.api.web import ASSETS, WEB_DIR
from service.auth import create_key
from service.config import Settings
from service.keys import Keys
from service.testing import TinyConfig, TinyEngine
from tests.service.conftest import LiveServer, WorkerThreads, vocal_bytes, wait_for, write_speech, write_vocal

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 20_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What Chromium's fake microphone plays (looped): a sung-ish tone at -23 dBFS."""
    return write_vocal(tmp_path_factory.mktemp("mic") / "mic.wav", seconds=3.0, sample_rate=48_000, seed=3)


@pytest.fixture(scope="module")
def browser(microphone: Path) -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",  # grants the microphone permission without a prompt
                f"--use-file-for-fake-audio-capture={microphone}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield launched
        launched.close()


class Console:
    """Script errors and CSP violations of a page (Chromium reports both; playwright relays them)."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._message)

    def _message(self, message) -> None:
        text = message.text
        # The API's own 4xx answers are logged as "Failed to load resource"; the tests provoke those.
        script_error = message.type == "error" and not text.startswith("Failed to load resource")
        if script_error or "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(text)


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    contexts, consoles = [], []

    def build(url: str, viewport: dict[str, int] = DESKTOP) -> Page:
        context = browser.new_context(viewport=viewport, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        consoles.append(Console(page))
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        return page

    yield build
    for context in contexts:
        context.close()
    problems = [p for console in consoles for p in console.problems]
    assert problems == [], problems


@pytest.fixture
def live(workers: WorkerThreads) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(settings: Settings) -> LiveServer:
        server = LiveServer(settings).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def new_key(rclient: redis.Redis, settings: Settings, name: str = "singer") -> str:
    return create_key(rclient, Keys(settings.redis_prefix), name)[0]


def api_answer(url: str, key: str, name: str, data: bytes) -> tuple[int, str]:
    """What the API itself answers for this upload: the page must show exactly this message."""
    response = httpx.post(
        f"{url}/v1/jobs", headers={"Authorization": f"Bearer {key}"}, files={"audio": (name, data)}, timeout=30
    )
    return response.status_code, response.json()["detail"]


def no_horizontal_scroll(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def media_durations(page: Page) -> list[float]:
    """Wait until both result players have loaded their metadata; their durations in seconds."""
    page.wait_for_function("() => ['mix-audio','acc-audio'].every(id => document.getElementById(id).duration > 0)")
    return page.evaluate("['mix-audio','acc-audio'].map(id => document.getElementById(id).duration)")


# ------------------------------------------------------------------------------------------- no browser
def test_page_and_assets_are_served_with_a_strict_policy(client_factory, settings_factory) -> None:
    api = client_factory(settings_factory(max_takes=3))
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "media-src 'self' blob:" in policy and "object-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"

    # Everything the page loads is served, from this origin, with the right type and the same headers.
    referenced = set(re.findall(r'(?:src|href)="web/([^"]+)"', page.text))
    assert {"app.js", "style.css", "icon.svg"} <= referenced
    for name in referenced | {"api.js", "options.js", "recorder.js", "waveform.js"}:
        asset = api.get(f"/web/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-security-policy"] == policy
        assert asset.headers["content-type"].split(";")[0] in {"text/javascript", "text/css", "image/svg+xml"}
    # Only the listed files: no path reaches outside service/web/.
    assert api.get("/web/..%2Fapi%2Fweb.py").status_code == 404
    assert api.get("/web/nothing.js").status_code == 404
    assert set(ASSETS) == {p.name for p in WEB_DIR.iterdir() if p.suffix in {".html", ".js", ".css", ".svg"}}

    config = api.get("/web/config.json").json()
    assert config == {"auth": "keys", "max_seconds": 8.0, "max_upload_bytes": 2 * 1024 * 1024, "max_takes": 3}


def test_no_inline_code_and_no_html_injection_in_the_sources() -> None:
    html = (WEB_DIR / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # every script is a file
    assert "<style" not in html and " style=" not in html and re.search(r"\bon[a-z]+=", html) is None
    for script in WEB_DIR.glob("*.js"):
        code = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in code, f"{script.name} uses {sink}"


# ------------------------------------------------------------------------------------------- in Chromium
def test_upload_listen_and_download(open_page, live, workers, engine, settings, rclient, tmp_path: Path) -> None:
    workers.start(settings, engine)
    server = live(settings)
    key = new_key(rclient, settings)
    vocal = write_vocal(tmp_path / "my song.wav", seconds=2.0, seed=1)
    page = open_page(server.url)
    responses: list[tuple[str, int]] = []
    page.on("response", lambda r: "/v1/jobs/" in r.url and responses.append((r.url, r.status)))

    assert page.is_visible("#key-panel")
    page.fill("#api-key", key)
    page.dispatch_event("#api-key", "change")
    page.click("#tab-upload")
    page.set_input_files("#file", str(vocal))
    page.wait_for_function("() => document.getElementById('vocal-duration').textContent === '0:02.0'")
    page.click("#advanced summary")
    page.fill("#opt-seed", "1234")
    page.fill("#opt-takes", "2")
    page.click("#submit")
    page.wait_for_selector("body[data-state=result]")

    assert media_durations(page) == pytest.approx([2.0, 2.0], abs=0.05)
    page.evaluate("document.getElementById('mix-audio').play()")
    page.wait_for_function("() => document.getElementById('mix-audio').currentTime > 0.1")
    page.evaluate("document.getElementById('acc-audio').play()")  # pauses the mix: one player at a time
    page.wait_for_function("() => document.getElementById('acc-audio').currentTime > 0.1")
    assert page.evaluate("document.getElementById('mix-audio').paused")
    results = {(re.sub(r".*/v1/jobs/[0-9a-f]+/", "", url), status) for url, status in responses if "take=" in url}
    assert results == {("mix?take=0", 200), ("accompaniment?take=0", 200)}

    # Both waveform lanes are drawn, and the settings to reproduce the job are shown.
    page.wait_for_selector("#wave[data-drawn='2']")
    assert not page.is_visible("#warnings")  # a sung vocal: nothing to warn about
    settings_text = page.inner_text("#settings")
    assert "1234" in settings_text and "my song.wav (2.0 s)" in settings_text

    # The second take, downloaded through the page, is byte for byte what the API serves for it.
    page.click("#takes [role=tab] >> nth=1")
    page.wait_for_selector("#result[data-take='1']")
    assert "1235" in page.inner_text("#settings")  # takes are seeded seed, seed + 1, ...
    with page.expect_download() as download:
        page.click("#mix-download")
    saved = tmp_path / "download.wav"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "my_song-mix-take1.wav"
    job_id = page.evaluate("document.querySelector('#settings dd:last-of-type').textContent")
    served = httpx.get(f"{server.url}/v1/jobs/{job_id}/mix?take=1", headers={"Authorization": f"Bearer {key}"})
    assert saved.read_bytes() == served.content
    assert sf.info(saved).duration == pytest.approx(2.0, abs=0.01)

    # The key is kept in this browser, never put in a URL.
    assert page.evaluate("localStorage.getItem('singsong.apiKey')") == key
    assert all(key not in url for url, _ in responses)
    assert no_horizontal_scroll(page)


def test_speech_is_accompanied_with_a_warning(open_page, live, workers, engine, settings, rclient, tmp_path) -> None:
    workers.start(settings, engine)
    server = live(settings)
    page = open_page(server.url)
    page.fill("#api-key", new_key(rclient, settings))
    page.dispatch_event("#api-key", "change")
    page.click("#tab-upload")
    page.set_input_files("#file", str(write_speech(tmp_path / "talk.wav")))
    page.click("#submit")
    page.wait_for_selector("body[data-state=result]")
    page.wait_for_selector("#warnings", state="visible")
    text = page.inner_text("#warnings")
    assert text.startswith("Note: little or no sung melody: held, pitched notes cover 0% of the vocal"), text


def test_record_from_the_microphone(open_page, live, workers, engine, settings_factory) -> None:
    settings = settings_factory(auth="open")
    workers.start(settings, engine)
    page = open_page(live(settings).url, viewport=PHONE)
    assert not page.is_visible("#key-panel")  # an open service needs no key
    page.evaluate(
        """() => {
            const time = document.getElementById('record-time');
            window.shown = [];
            new MutationObserver(() => shown.push(time.textContent)).observe(time, {childList: true});
            window.loudest = 0;
            const meter = document.getElementById('meter-fill');
            new MutationObserver(() => {
                const level = parseFloat(/scaleX\\(([^)]+)\\)/.exec(meter.style.transform)?.[1] || '0');
                loudest = Math.max(loudest, level);
            }).observe(meter, {attributes: true});
        }"""
    )
    page.fill("#bpm", "240")  # a one-bar count-in of 1 s
    page.click("#record")
    page.wait_for_selector("body[data-recording=on]")
    page.wait_for_function("() => /^0:0[2-9]/.test(document.getElementById('record-time').textContent)")
    page.click("#record")
    page.wait_for_selector("#vocal-preview:not([hidden])")

    shown = page.evaluate("window.shown")
    first_time = next(i for i, text in enumerate(shown) if text.startswith("0:"))
    count_in = [text for text in shown[:first_time] if text.endswith("…")]
    assert count_in[0] == "4…" and count_in[-1] == "1…"  # the count-in came before the recording
    assert page.evaluate("window.loudest") > 0.3  # the meter followed the -23 dBFS microphone
    seconds = float(page.inner_text("#vocal-duration").split(":")[1])
    assert 2.0 <= seconds < 6.0
    assert page.evaluate("document.getElementById('vocal-audio').src").startswith("blob:")

    page.click("#submit")
    page.wait_for_selector("body[data-state=result]")
    assert media_durations(page) == pytest.approx([seconds, seconds], abs=0.5)  # timer vs encoded audio
    assert re.search(r"recording-\d{8}-\d{6}\.webm \(\d\.\d s\)", page.inner_text("#settings"))
    assert no_horizontal_scroll(page)


def test_errors_show_the_api_message_and_retry_works(
    open_page, live, workers, engine, settings, rclient, tmp_path: Path
) -> None:
    workers.start(settings, engine)
    server = live(settings)
    key = new_key(rclient, settings)
    page = open_page(server.url)
    page.fill("#api-key", "ss_not-a-key")

    # A wrong key: 401, and the key field is pointed at.
    page.set_input_files("#file", str(write_vocal(tmp_path / "ok.wav", seconds=1.0)))
    page.click("#submit")
    page.wait_for_selector("#error[data-status='401']")
    assert page.inner_text("#error-message") == "unknown or revoked API key"
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.fill("#api-key", key)

    # Not audio, dropped onto the page: the API's own message.
    notes = b"these are my lyrics, not a recording\n" * 20
    status, detail = api_answer(server.url, key, "lyrics.txt", notes)
    page.evaluate(
        """([name, text]) => {
            const files = new DataTransfer();
            files.items.add(new File([text], name, {type: 'text/plain'}));
            const drop = new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true});
            document.getElementById('vocal').dispatchEvent(drop);
        }""",
        ["lyrics.txt", notes.decode()],
    )
    page.click("#submit")
    page.wait_for_selector(f"#error[data-status='{status}']")
    assert status in {415, 422} and page.inner_text("#error-message") == detail

    # Too long (the test service allows 8 s), then too large (2 MiB): each with the API's message.
    for name, seconds, expected in (("long.wav", 9.0, 422), ("large.wav", 70.0, 413)):
        data = vocal_bytes(tmp_path, seconds)
        status, detail = api_answer(server.url, key, name, data)
        assert status == expected
        page.set_input_files("#file", files=[{"name": name, "mimeType": "audio/wav", "buffer": data}])
        page.click("#submit")
        page.wait_for_selector(f"#error[data-status='{status}']")
        # The request size in the 413 message counts the page's option fields too.
        body_size = re.compile(r"request is \d+ bytes")
        assert body_size.sub("", page.inner_text("#error-message")) == body_size.sub("", detail)

    # A usable file, then "Try again": the job goes through.
    page.set_input_files("#file", str(write_vocal(tmp_path / "fine.wav", seconds=1.5)))
    page.wait_for_selector("body[data-state=idle]")
    page.click("#submit")
    page.wait_for_selector("body[data-state=result]")
    assert media_durations(page) == pytest.approx([1.5, 1.5], abs=0.05)


def test_busy_service_retry_after_and_progress(
    open_page, live, workers, settings_factory, rclient, tmp_path: Path
) -> None:
    """429 (quota) and 503 (queue full) show their message and count down Retry-After; after a retry the
    page shows the job generating, with its progress, and then the result."""
    settings = settings_factory(
        max_active_jobs=1, max_queue_length=2, quota_retry_after_s=1, queue_full_retry_after_s=1
    )
    server = live(settings)  # no worker yet: submitted jobs stay queued
    keys = [new_key(rclient, settings, name) for name in ("a", "b", "c")]
    vocal = write_vocal(tmp_path / "v.wav", seconds=2.0)

    def submit_directly(key: str) -> str:
        headers = {"Authorization": f"Bearer {key}"}
        response = httpx.post(f"{server.url}/v1/jobs", headers=headers, files={"audio": ("v.wav", vocal.read_bytes())})
        assert response.status_code == 202
        return response.json()["id"]

    queued = [submit_directly(keys[0])]
    page = open_page(server.url)
    page.fill("#api-key", keys[0])
    page.set_input_files("#file", str(vocal))
    page.evaluate(
        """() => {
            const retry = document.getElementById('retry');
            window.retryStates = [];
            const log = () => retryStates.push([retry.textContent, retry.disabled]);
            new MutationObserver(log).observe(retry, {childList: true, attributes: true});
        }"""
    )
    page.click("#submit")
    page.wait_for_selector("#error[data-status='429']")
    assert page.inner_text("#error-title") == "Too many requests right now"
    assert page.inner_text("#error-message") == "too many active jobs (1 queued or running, the limit is 1 per key)"
    page.wait_for_function("() => !document.getElementById('retry').disabled")
    states = page.evaluate("window.retryStates")
    assert ["Try again in 1 s", True] in states and states[-1] == ["Try again", False]  # Retry-After: 1

    # The second queue place goes to key b; key c then finds the queue full.
    queued.append(submit_directly(keys[1]))
    page.fill("#api-key", keys[2])
    page.click("#retry")
    page.wait_for_selector("#error[data-status='503']")
    assert page.inner_text("#error-message") == "the queue is full, try again later"
    page.wait_for_function("() => !document.getElementById('retry').disabled")

    # Free the queue, then a slow worker (about 2 s for this vocal) lets the progress be seen.
    for job_id, k in zip(queued, keys, strict=False):
        httpx.delete(f"{server.url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {k}"})
    workers.start(settings, TinyEngine(TinyConfig(dim=32, layers=1, slow_down_s=0.02)))
    k = Keys(settings.redis_prefix)
    wait_for(lambda: rclient.get(k.seq_enqueued) == rclient.get(k.seq_delivered), timeout=10)
    page.click("#retry")
    page.wait_for_function(
        "() => document.getElementById('progress').value > 0 && document.getElementById('progress').value < 1"
    )
    assert page.inner_text("#status-text").startswith("Generating the accompaniment")
    page.wait_for_selector("body[data-state=result]")
    assert media_durations(page) == pytest.approx([2.0, 2.0], abs=0.05)


def test_options_queue_position_and_cancel(open_page, live, settings_factory, tmp_path: Path) -> None:
    """The form's bounds come from the API's schema and limits; a queued job shows its place, survives a
    reload, and Cancel withdraws it."""
    server = live(settings_factory(auth="open", max_takes=3))  # no worker: jobs stay queued
    page = open_page(server.url)
    bounds = page.evaluate(
        "['opt-takes','opt-temperature','opt-guidance','opt-key'].map(id => [document.getElementById(id).min,"
        " document.getElementById(id).max])"
    )
    assert bounds == [["1", "3"], ["0.01", "5"], ["0", "20"], ["0", "50"]]  # takes capped by this deployment
    assert page.is_hidden("#engine-field")  # this API declares no engine choice
    # Temperature and guidance start empty, so a job leaves them unset and gets the model's recommended values.
    assert (
        page.input_value("#opt-temperature") == page.input_value("#opt-guidance") == page.input_value("#opt-key") == ""
    )
    page.set_input_files("#file", files=[{"name": "v.wav", "mimeType": "audio/wav", "buffer": b"RIFF"}])
    page.click("#advanced summary")
    page.fill("#opt-takes", "4")
    page.click("#submit")  # the browser's own validation stops it before any upload
    assert page.evaluate("document.getElementById('opt-takes').validity.rangeOverflow")
    assert page.get_attribute("body", "data-state") == "idle"

    vocal = write_vocal(tmp_path / "v.wav", seconds=1.0)
    assert httpx.post(f"{server.url}/v1/jobs", files={"audio": ("first.wav", vocal.read_bytes())}).status_code == 202
    page.fill("#opt-takes", "1")
    page.set_input_files("#file", str(vocal))
    with page.expect_response(lambda r: r.url.endswith("/v1/jobs") and r.request.method == "POST") as submitted:
        page.click("#submit")
    job_id = submitted.value.json()["id"]
    in_queue = "() => document.getElementById('status-text').textContent === 'Waiting in the queue: position 2'"
    page.wait_for_function(in_queue)
    page.reload()  # a reload (or a phone discarding the tab) finds the job again
    page.wait_for_function(in_queue)
    page.click("#cancel")
    page.wait_for_selector("body[data-state=idle]")
    wait_for(lambda: httpx.get(f"{server.url}/v1/jobs/{job_id}").json()["status"] == "cancelled")
    page.reload()  # a cancelled job is not resumed
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("body", "data-state") == "idle"


def test_the_browser_enforces_the_policy(browser: Browser, live, settings_factory) -> None:
    """Negative control for the CSP checks above: an injected inline script is refused, and said so."""
    server = live(settings_factory(auth="open"))
    context = browser.new_context()
    try:
        page = context.new_page()
        console = Console(page)
        page.goto(server.url)
        page.wait_for_selector("body[data-ready=true]")
        page.evaluate(
            """() => {
                const script = document.createElement('script');
                script.textContent = 'window.injected = true';
                document.head.append(script);
            }"""
        )
        page.wait_for_function("() => document.readyState === 'complete'")
        assert page.evaluate("window.injected") is None
        assert any("inline script" in p and "Content Security Policy" in p for p in console.problems), console.problems
    finally:
        context.close()
