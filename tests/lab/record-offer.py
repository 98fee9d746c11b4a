#!/usr/bin/env python3
"""Records real WebRTC SDPs (the web client's first offer, its answer to the bridge's offer of
output slots, its renegotiation offer after adding a shared canvas track) from headless
Chromium and Firefox ESR, with their fake camera and microphone. See tests/lab/README.md.

    python3 tests/lab/record-offer.py --out DIR [BROWSER...]

BROWSER is NAME=KIND:BINARY (KIND chromium or firefox), or one of the presets:
    chromium156  chromium:/usr/bin/chromium            (via ../shared/lab/chromium-webrtc.sh)
    chromium150  chromium:/opt/chromium-150/usr/lib/chromium/chromium
    firefox153   firefox:/usr/bin/firefox-esr           (via tests/lab/firefox-webrtc.sh + BiDi)
    firefox140   firefox:/opt/firefox-esr-140/usr/lib/firefox-esr/firefox-esr
Default: all four. Writes DIR/<name>_offer.sdp, <name>_answer.sdp, <name>_offer2.sdp (byte
for byte what the browser produced, CRLF) and DIR/<name>.json (user agent, capabilities,
track settings, the bridge's SDPs, steps; --json-dir elsewhere). Serves record.html on a random 127.0.0.1 port;
every browser is ended (process group) after at most --timeout seconds.
"""
import argparse
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_LAB = os.path.normpath(os.path.join(HERE, "../../../shared/lab"))
PRESETS = {
    "chromium156": ("chromium", "/usr/bin/chromium"),
    "chromium150": ("chromium", "/opt/chromium-150/usr/lib/chromium/chromium"),
    "firefox153": ("firefox", "/usr/bin/firefox-esr"),
    "firefox140": ("firefox", "/opt/firefox-esr-140/usr/lib/firefox-esr/firefox-esr"),
}
results = {}
cond = threading.Condition()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/record.html":
            body = open(os.path.join(HERE, "record.html"), "rb").read()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()

    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        n = int(self.headers.get("content-length", 0))
        data = json.loads(self.rfile.read(n))
        name = urllib.parse.parse_qs(u.query).get("name", ["?"])[0]
        with cond:
            results[name] = data
            cond.notify_all()
        self.send_response(204)
        self.end_headers()


def wait_result(name, timeout):
    deadline = time.monotonic() + timeout
    with cond:
        while not results.get(name, {}).get("done"):
            left = deadline - time.monotonic()
            if left <= 0:
                return results.get(name)
            cond.wait(left)
        return results[name]


def version_of(kind, binary, r):
    if kind == "firefox":
        caps = r.get("bidi_session") or {}
        return f"Firefox {caps.get('browserVersion')} (build {caps.get('moz:buildID')})"
    with tempfile.TemporaryDirectory() as home:
        try:
            return subprocess.run([binary, "--version"], env=dict(os.environ, HOME=home), capture_output=True,
                                  text=True, timeout=30).stdout.strip()
        except Exception as e:  # noqa: BLE001
            return f"? ({e!r})"


def run_chromium(name, binary, url, scratch, timeout):
    env = dict(os.environ, LAB_SCRATCH=scratch)
    shim = None
    if binary != "/usr/bin/chromium":
        # chromium-webrtc.sh runs `chromium` from PATH: put this binary first, same flags.
        shim = tempfile.mkdtemp(dir=scratch, prefix="shim.")
        os.symlink(binary, os.path.join(shim, "chromium"))
        env["PATH"] = shim + ":" + env["PATH"]
    proc = subprocess.Popen(["bash", os.path.join(SHARED_LAB, "chromium-webrtc.sh"), url],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        return wait_result(name, timeout)
    finally:
        proc.send_signal(signal.SIGTERM)        # the script ends Chromium's process group
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        if shim:
            shutil.rmtree(shim, ignore_errors=True)


def run_firefox(name, binary, url, scratch, timeout):
    sys.path.insert(0, HERE)
    from bidi import Firefox
    with Firefox(binary=binary, scratch=scratch) as ff:
        ff.navigate(url, wait="none")
        r = wait_result(name, timeout)
        r = dict(r or {}, bidi_session=ff.session.get("capabilities"))
        return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("browsers", nargs="*", default=list(PRESETS))
    ap.add_argument("--out", required=True, help="directory for the .sdp files")
    ap.add_argument("--json-dir", default=None, help="directory for <name>.json (default: --out)")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--scratch", default=os.environ.get("LAB_SCRATCH", "/tmp/lab-scratch"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.json_dir or args.out, exist_ok=True)
    os.makedirs(args.scratch, exist_ok=True)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    ok = True
    for spec in args.browsers:
        if spec in PRESETS:
            name, (kind, binary) = spec, PRESETS[spec]
        else:
            name, rest = spec.split("=", 1)
            kind, binary = rest.split(":", 1)
        url = f"http://127.0.0.1:{port}/record.html?name={urllib.parse.quote(name)}"
        t0 = time.monotonic()
        runner = run_chromium if kind == "chromium" else run_firefox
        try:
            r = runner(name, binary, url, args.scratch, args.timeout)
        except Exception as e:  # noqa: BLE001 - report and go on with the next browser
            r = {"errors": [f"runner: {e!r}"]}
        r = r or {"errors": ["no result within timeout"]}
        r["recorded_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        r["binary"] = binary
        r["version"] = version_of(kind, binary, r)
        for key in ("offer", "answer", "offer2"):
            if r.get(key):
                with open(os.path.join(args.out, f"{name}_{key}.sdp"), "w", newline="") as f:
                    f.write(r[key])
        with open(os.path.join(args.json_dir or args.out, f"{name}.json"), "w") as f:
            json.dump(r, f, indent=1)
        got = [k for k in ("offer", "answer", "offer2") if r.get(k)]
        print(f"{name}: {r['version']} | {r.get('ua', '?')} -> {got} in {time.monotonic() - t0:.1f} s; errors: {r.get('errors')}")
        ok = ok and len(got) == 3 and not r.get("errors")
    server.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
