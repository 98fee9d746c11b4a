"""Minimal WebDriver BiDi client for headless Firefox (tests/lab/firefox-webrtc.sh).

Only talks to 127.0.0.1. Needs the `websockets` package (pip install websockets); uses its
synchronous client so scripts stay plain and every call has a timeout.

    with Firefox() as ff:                      # launches firefox-webrtc.sh, session.new
        ff.navigate("http://127.0.0.1:8000/x.html")
        print(ff.eval_json("navigator.userAgent"))
"""
import base64
import json
import os
import re
import signal
import subprocess
import threading
import time

from websockets.sync.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))


class BidiError(RuntimeError):
    pass


class Bidi:
    """One BiDi WebSocket connection: send a command, wait for its reply (events are kept)."""

    def __init__(self, ws_url, timeout=15.0):
        # Firefox serves BiDi sessions on <ws_url>/session. (websockets >= 16 wants connect()
        # used as a context manager; enter it by hand so the connection outlives this call.)
        self._cm = connect(ws_url.rstrip("/") + "/session", open_timeout=timeout, max_size=64 << 20)
        self.ws = self._cm.__enter__()
        self.next_id = 1
        self.events = []
        self.timeout = timeout

    def command(self, method, params=None, timeout=None):
        cid = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": cid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BidiError(f"{method}: no reply within {timeout or self.timeout} s")
            msg = json.loads(self.ws.recv(timeout=left))
            if msg.get("type") == "event":
                self.events.append(msg)
                continue
            if msg.get("id") != cid:
                continue
            if msg.get("type") == "error":
                raise BidiError(f"{method}: {msg.get('error')}: {msg.get('message')}")
            return msg["result"]

    def close(self):
        try:
            self._cm.__exit__(None, None, None)
        except Exception:
            pass


class Firefox:
    """Launches tests/lab/firefox-webrtc.sh, opens a BiDi session with acceptInsecureCerts,
    and finds the top-level browsing context. `with` ends the session and the browser."""

    def __init__(self, binary=None, url="about:blank", scratch=None, env=None, launch_timeout=30.0):
        e = dict(os.environ)
        if binary:
            e["DIEMCAU_FIREFOX"] = binary
        if scratch:
            e["LAB_SCRATCH"] = scratch
        e.update(env or {})
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(["bash", os.path.join(HERE, "firefox-webrtc.sh"), url],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=e,
                                     text=True, start_new_session=True)
        self.profile = None
        self.pgid = None
        self.ws_url = None
        found = threading.Event()
        self.stderr_lines = []

        def reader():
            for line in self.proc.stderr:
                self.stderr_lines.append(line.rstrip())
                m = re.search(r"pid=(\d+) profile=(\S+)", line)
                if m:
                    self.pgid, self.profile = int(m.group(1)), m.group(2)
                m = re.search(r"bidi=(ws://\S+)", line)
                if m:
                    self.ws_url = m.group(1)
                    found.set()
            found.set()

        threading.Thread(target=reader, daemon=True).start()
        if not found.wait(launch_timeout) or not self.ws_url:
            self.stop()
            raise BidiError("firefox-webrtc.sh gave no bidi= line: " + " | ".join(self.stderr_lines))
        self.bidi_up = time.monotonic() - self.t0
        self.bidi = Bidi(self.ws_url)
        self.session = self.bidi.command("session.new", {"capabilities": {"alwaysMatch": {
            "acceptInsecureCerts": True,
            "unhandledPromptBehavior": {"default": "ignore"},
        }}})
        tree = self.bidi.command("browsingContext.getTree", {"maxDepth": 0})
        self.context = tree["contexts"][0]["context"]

    # --- commands -------------------------------------------------------------------------
    def navigate(self, url, wait="complete", timeout=30):
        return self.bidi.command("browsingContext.navigate",
                                 {"context": self.context, "url": url, "wait": wait}, timeout=timeout)

    def evaluate(self, expression, await_promise=True, timeout=30):
        """Raw script.evaluate result: {"type":"success","result":<RemoteValue>,"realm":...}
        or {"type":"exception","exceptionDetails":{...}}."""
        return self.bidi.command("script.evaluate", {
            "expression": expression, "target": {"context": self.context},
            "awaitPromise": await_promise, "resultOwnership": "none"}, timeout=timeout)

    def eval_json(self, expression, timeout=30):
        """Evaluates `expression` (a promise is awaited) and returns its value as plain JSON,
        by having the page JSON.stringify it (BiDi's own serialization is typed, see README)."""
        r = self.evaluate(f"(async () => JSON.stringify(await ({expression})))()", timeout=timeout)
        if r["type"] != "success":
            d = r.get("exceptionDetails", {})
            raise BidiError("page exception: " + str(d.get("text")))
        v = r["result"]
        if v["type"] == "undefined":
            return None
        return json.loads(v["value"])

    def set_viewport(self, width, height):
        return self.bidi.command("browsingContext.setViewport",
                                 {"context": self.context, "viewport": {"width": width, "height": height}})

    def screenshot(self, path):
        r = self.bidi.command("browsingContext.captureScreenshot", {"context": self.context})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path

    def pids(self):
        """Every process in Firefox's process group (the launcher setsid()s Firefox, so the
        group id is the pid it prints as pid=)."""
        out = subprocess.run(["ps", "-e", "-o", "pid=,pgid="], capture_output=True, text=True).stdout
        return [int(p) for p, g in (l.split() for l in out.splitlines()) if int(g) == self.pgid]

    def stop(self, timeout=15):
        """browser.close (Firefox quits, the launcher removes the profile and exits 0); if the
        launcher is still there after 10 s, SIGTERM it (it ends Firefox's process group)."""
        try:
            if getattr(self, "bidi", None):
                try:
                    self.bidi.command("browser.close", timeout=5)
                except Exception:
                    pass
                self.bidi.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
