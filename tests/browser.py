#!/usr/bin/env python3
"""Types into a page in a real headless chromium and reports what it shows.

Usage: browser.py PAGE.html TEXT SCREENSHOT.png
Prints one JSON object: the number of visible `tr.option` rows before typing and after
typing TEXT (one key event per character, through the DevTools protocol's
Input.dispatchKeyEvent, into the focused `#search` box), the box's value, the `#count`
text, and the first visible path. Python's standard library only: the DevTools
websocket is spoken over a raw socket.
"""

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


def main():
    page, text, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]
    profile = tempfile.mkdtemp(prefix="berth-chromium-")
    browser = subprocess.Popen(
        [
            shutil.which("chromium") or "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--user-data-dir=" + profile,
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = devtools_port(browser)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        tab = DevTools(url)
        tab.call("Page.enable")
        tab.call("Page.navigate", url="file://" + os.path.abspath(page))
        wait_for(lambda: tab.evaluate("document.readyState") == "complete")
        visible = "document.querySelectorAll('tr.option:not(.hidden)').length"
        before = tab.evaluate(visible)
        tab.evaluate("document.getElementById('search').focus()")
        for char in text:
            tab.call("Input.dispatchKeyEvent", type="keyDown", text=char, key=char)
            tab.call("Input.dispatchKeyEvent", type="keyUp", key=char)
        after = tab.evaluate(visible)
        shot = tab.call("Page.captureScreenshot", format="png")
        with open(screenshot, "wb") as out:
            out.write(base64.b64decode(shot["data"]))
        print(
            json.dumps(
                {
                    "before": before,
                    "after": after,
                    "value": tab.evaluate("document.getElementById('search').value"),
                    "count": tab.evaluate("document.getElementById('count').textContent"),
                    "first": tab.evaluate(
                        "(document.querySelector('tr.option:not(.hidden) code') || {}).textContent || ''"
                    ),
                }
            )
        )
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


def devtools_port(browser):
    """chromium prints `DevTools listening on ws://127.0.0.1:PORT/…` on stderr."""
    deadline = time.time() + 60
    while time.time() < deadline:
        line = browser.stderr.readline()
        if not line and browser.poll() is not None:
            raise SystemExit("chromium exited before listening")
        found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if found:
            return int(found.group(1))
    raise SystemExit("chromium did not open its DevTools port in 60 s")


def wait_for(condition, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit("timed out waiting for the page")


class DevTools:
    """A minimal websocket client (RFC 6455: client frames masked, text only)."""

    def __init__(self, url):
        match = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        host, port, path = match.group(1), int(match.group(2)), match.group(3)
        self.sock = socket.create_connection((host, port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        if b" 101 " not in response.split(b"\r\n")[0]:
            raise SystemExit("websocket handshake refused: " + response.decode(errors="replace"))
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise SystemExit(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def send(self, text):
        data = text.encode()
        header = bytes([0x81])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        elif len(data) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def receive(self):
        message = b""
        while True:
            first, second = self.exact(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.exact(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.exact(8))[0]
            payload = self.exact(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise SystemExit("chromium closed the DevTools connection")
            if opcode in (0x9, 0xA):
                continue
            message += payload
            if first & 0x80:
                return message.decode()

    def exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise SystemExit("DevTools connection ended")
            data += chunk
        return data


if __name__ == "__main__":
    main()
