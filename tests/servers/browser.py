"""A real browser against the review app: the app served by uvicorn on a free loopback
port (in a thread of this process, so a test can share its database engine), and
Debian's Chromium driven by Playwright's sync API.

Playwright never downloads a browser here: it drives /usr/bin/chromium (the Debian
package), with the background services that would call out to the internet turned off,
a host resolver that resolves no name, and every browser context these helpers make
aborts any request not to loopback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from playwright.sync_api import Browser, BrowserContext, Playwright, Route, sync_playwright

from tests.servers.ports import LOOPBACK, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",  # tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Even so, Debian's Chromium looks up accounts.google.com and update.googleapis.com
    # (seen with strace): its resolver answers nothing but loopback.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
LOCAL_SCHEMES = frozenset(("data", "about", "blob"))


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; fails plainly if the package is missing (never fetches one)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))


@contextmanager
def chromium() -> Iterator[Browser]:
    """Playwright and one Chromium, closed afterwards."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname == LOOPBACK


def loopback_context(browser: Browser, **options: Any) -> tuple[BrowserContext, list[str]]:
    """A new context that aborts every request to a host other than 127.0.0.1, and the
    list it records those URLs in (a test asserts it stays empty)."""
    context = browser.new_context(**options)
    elsewhere: list[str] = []

    def guard(route: Route) -> None:
        url = route.request.url
        if is_loopback(url):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    return context, elsewhere


@contextmanager
def serve(app: Any, seconds: float = 30) -> Iterator[str]:
    """APP served on 127.0.0.1 at a free port until the block ends; yields its base URL.

    A port taken between picking and binding it is retried with another.
    """
    for _ in range(5):
        port = free_port()
        config = uvicorn.Config(
            app, host=LOOPBACK, port=port, log_level="warning", lifespan="off", access_log=False
        )
        server = uvicorn.Server(config)  # leaves signals alone outside the main thread
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + seconds
        while not server.started and thread.is_alive():
            if time.monotonic() > deadline:
                server.should_exit = True
                raise AssertionError(f"the app did not start listening on port {port}")
            time.sleep(0.02)
        if server.started:
            break
        thread.join()  # it could not bind: try another port
    else:
        raise AssertionError("the app could not bind a loopback port")
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=seconds)
