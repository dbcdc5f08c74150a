"""A real headless Chromium, driven over the DevTools protocol through a pipe.

No extra Python dependency: Chromium's ``--remote-debugging-pipe`` reads commands on
file descriptor 3 and writes replies and events on 4, as JSON separated by NUL bytes.

    with Browser.launch(tmp_path) as browser:
        page = browser.open(path.as_uri())
        page.click("button[data-outcome=flipped]")       # a real mouse click
        assert page.evaluate("document.title") == "..."
        assert page.console_errors == []

``Browser.executable()`` is None where no Chromium is installed: tests skip then.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: A hang guard, not a timing assertion: no step of a test comes near it.
REPLY_TIMEOUT_S = 90.0
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
)


LAUNCHER = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class BrowserError(RuntimeError):
    pass


def _moved_above_4(descriptor: int) -> int:
    moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD, 5)
    os.close(descriptor)
    return moved


class Browser:
    def __init__(self, process: subprocess.Popen[bytes], commands: int, replies: int) -> None:
        self.process = process
        self._commands = commands
        self._replies = replies
        self._next_id = 0
        self._lock = threading.Lock()
        self._waiting: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @staticmethod
    def executable() -> str | None:
        return next((found for name in CANDIDATES if (found := shutil.which(name))), None)

    @classmethod
    @contextlib.contextmanager
    def launch(cls, profile: Path) -> Iterator[Browser]:
        executable = cls.executable()
        if executable is None:
            raise BrowserError("no Chromium on PATH")
        to_browser_read, to_browser_write = os.pipe()
        from_browser_read, from_browser_write = os.pipe()
        # A small launcher puts the pipe ends on the descriptors Chromium reads and writes
        # (moved above 4 first, so that placing one cannot overwrite the other), then
        # becomes Chromium. (A shell cannot: dash only redirects descriptors 0 to 9.)
        to_browser_read, from_browser_write = (
            _moved_above_4(to_browser_read),
            _moved_above_4(from_browser_write),
        )
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCHER,
                str(to_browser_read),
                str(from_browser_write),
                executable,
                *FLAGS,
                f"--user-data-dir={profile}",
            ],
            pass_fds=(to_browser_read, from_browser_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        browser = cls(process, to_browser_write, from_browser_read)
        try:
            yield browser
        finally:
            browser.close()

    # --- the protocol ------------------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._replies, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, _, buffer = buffer.partition(b"\0")
                message = json.loads(raw)
                waiting = self._waiting.pop(message.get("id", -1), None)
                if waiting is not None:
                    waiting.put(message)
                else:
                    with self._arrived:
                        self.events.append(message)
                        self._arrived.notify_all()
        for waiting in list(self._waiting.values()):
            waiting.put({"error": {"message": "the browser closed its pipe"}})

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
            reply: queue.Queue[dict[str, Any]] = queue.Queue()
            self._waiting[message_id] = reply
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode("utf-8") + b"\0")
        try:
            answer = reply.get(timeout=REPLY_TIMEOUT_S)
        except queue.Empty:
            raise BrowserError(f"{method}: no reply from the browser") from None
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def wait_for_event(self, method: str, session: str, after: int) -> dict[str, Any]:
        """The first ``method`` event of ``session`` among the events from index ``after``."""

        def found() -> dict[str, Any] | None:
            return next(
                (
                    event
                    for event in self.events[after:]
                    if event.get("method") == method and event.get("sessionId") == session
                ),
                None,
            )

        with self._arrived:
            if not self._arrived.wait_for(lambda: found() is not None, REPLY_TIMEOUT_S):
                raise BrowserError(f"no {method} event from the browser")
            event = found()
        assert event is not None
        return event

    def open(self, url: str, width: int = 1280, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        page.navigate(url)
        return page

    def close(self) -> None:
        with contextlib.suppress(OSError, BrowserError):
            if self.process.poll() is None:
                self.send("Browser.close")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for descriptor in (self._commands, self._replies):
            with contextlib.suppress(OSError):
                os.close(descriptor)


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, session=self.session)

    def navigate(self, url: str) -> None:
        if self.browser.events and "#" in url:
            here = self.evaluate("location.href")
            if here == url:
                return
            if here.split("#")[0] == url.split("#")[0]:
                # Only the fragment changes: no load event comes. Resolve once the page's
                # own hashchange listeners (registered before this one) have run.
                fragment = json.dumps("#" + url.split("#", 1)[1])
                self.evaluate(
                    "new Promise((resolve) => { window.addEventListener('hashchange',"
                    f" () => resolve(true), {{once: true}}); location.hash = {fragment}; }})"
                )
                return
        seen = len(self.browser.events)
        reply = self.send("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise BrowserError(f"cannot open {url}: {reply['errorText']}")
        if reply.get("loaderId"):  # absent when only the #fragment changed: no new load
            self.browser.wait_for_event("Page.loadEventFired", self.session, seen)

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression!r} threw: {details.get('exception', details)}")
        return result["result"].get("value")

    def _center(self, selector: str) -> tuple[float, float]:
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise BrowserError(f"no element matches {selector!r}")
        return box[0], box[1]

    def click(self, selector: str) -> None:
        """A mouse click at the element's centre, as a person would make it."""
        x, y = self._center(selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path, until: str | None = None) -> None:
        """The viewport as PNG; with ``until``, the page from its top to that element's end."""
        params: dict[str, Any] = {"format": "png"}
        if until is not None:
            width, bottom = self.evaluate(
                f"(() => {{ scrollTo(0, 0); const r = document.querySelector({json.dumps(until)})"
                ".getBoundingClientRect(); return [innerWidth, r.bottom + 8]; })()"
            )
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": bottom, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))

    @property
    def console_errors(self) -> list[str]:
        """Errors the page logged: uncaught exceptions, console.error, blocked loads."""
        errors = []
        for event in list(self.browser.events):
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                errors.append(str(params["exceptionDetails"].get("exception", params)))
            elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                errors.append(" ".join(str(a.get("value", a)) for a in params.get("args", [])))
            elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"].get("text", ""))
        return errors
