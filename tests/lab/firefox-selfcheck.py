#!/usr/bin/env python3
"""Two headless Firefox ESR instances (tests/lab/firefox-webrtc.sh), driven over WebDriver
BiDi, make a WebRTC call over 127.0.0.1: A sends its fake camera (640x480; with --simulcast
in two layers l/h as web/bridge.js does) and fake microphone (--tone Hz), B receives. SDP goes through this script (BiDi
script.evaluate), the page comes from a python server on a random 127.0.0.1 port.

PASS (exit 0) when B has framesDecoded > 0 and totalAudioEnergy > 0 within --timeout.
Also reports what the fake devices produce, the candidate pair used, the layers A encodes,
CPU of each browser over --hold seconds, and saves a screenshot of B.

    python3 tests/lab/firefox-selfcheck.py [--firefox BIN] [--https] [--simulcast] [--tone 440]
            [--hold 10] [--timeout 30] [--omit-prefs "pref.prefix ..."] [--json FILE]
"""
import argparse
import functools
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bidi import Firefox  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


CERT_DIRS = []


def serve(https, scratch):
    handler = functools.partial(Handler, directory=HERE)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if https:
        d = tempfile.mkdtemp(dir=scratch, prefix="cert.")
        CERT_DIRS.append(d)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem"],
                       check=True, capture_output=True, timeout=60)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{d}/cert.pem", f"{d}/key.pem")
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if https else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}/firefox-call.html"


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read()
            fields = f[f.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total


def pss_kib(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def munge_answer_for_simulcast(answer, rids=("l", "h")):
    """Firefox does not receive simulcast; tell the sender it may send both layers anyway
    (the receiver then decodes whichever SSRC it locks on to)."""
    lines = answer.split("\r\n")
    out, in_video = [], False
    for line in lines:
        if line.startswith("m="):
            if in_video:
                out.extend(_sim_lines(rids))
            in_video = line.startswith("m=video")
        if line == "" and in_video:
            out.extend(_sim_lines(rids))
            in_video = False
        out.append(line)
    return "\r\n".join(out)


def _sim_lines(rids):
    return [f"a=rid:{r} recv" for r in rids] + ["a=simulcast:recv " + ";".join(rids)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--firefox", default=os.environ.get("DIEMCAU_FIREFOX"))
    ap.add_argument("--https", action="store_true")
    ap.add_argument("--simulcast", action="store_true",
                    help="A sends l/h simulcast as web/bridge.js (B's answer is munged; B then decodes ~6 fps)")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--hold", type=float, default=10, help="seconds of steady call for CPU/PSS (0 = skip)")
    ap.add_argument("--omit-prefs", default="", help="LAB_OMIT_PREFS for both browsers")
    ap.add_argument("--receiver-grant", choices=["none", "gum", "bidi"], default="none",
                    help="receive-only B: nothing (default; the launcher's permissions.default.* prefs let "
                         "it gather 127.0.0.1), a getUserMedia call first, or BiDi permissions.setPermission "
                         "(Firefox 153: 'camera is currently unsupported')")
    ap.add_argument("--tone", type=int, default=440, help="A's fake microphone frequency (LAB_FAKE_TONE)")
    ap.add_argument("--screenshot", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--scratch", default=os.environ.get("LAB_SCRATCH", "/tmp/lab-scratch"))
    args = ap.parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    t0 = time.monotonic()
    report = {"firefox": args.firefox or "firefox-esr", "https": args.https, "omit_prefs": args.omit_prefs}
    server, url = serve(args.https, args.scratch)
    env = {"LAB_OMIT_PREFS": args.omit_prefs} if args.omit_prefs else {}
    env["LAB_FAKE_TONE"] = str(args.tone)
    browsers = {}
    errors = {}

    def launch(name):
        try:
            browsers[name] = Firefox(binary=args.firefox, scratch=args.scratch, env=env)
        except Exception as e:  # noqa: BLE001
            errors[name] = repr(e)

    ths = [threading.Thread(target=launch, args=(n,)) for n in ("A", "B")]
    [t.start() for t in ths]
    [t.join(60) for t in ths]
    ok = False
    steps = report["steps_s"] = {}
    mark = lambda name: steps.__setitem__(name, round(time.monotonic() - t0, 2))
    try:
        if errors or len(browsers) != 2:
            raise RuntimeError(f"launch failed: {errors}")
        a, b = browsers["A"], browsers["B"]
        report["bidi_up_s"] = {"A": round(a.bidi_up, 2), "B": round(b.bidi_up, 2)}
        report["browserVersion"] = a.session["capabilities"].get("browserVersion")
        mark("launched")
        origin = url.split("/firefox-call.html")[0]
        if args.receiver_grant == "bidi":
            for name in ("camera", "microphone"):
                b.bidi.command("permissions.setPermission",
                               {"descriptor": {"name": name}, "state": "granted", "origin": origin})
        for ff in (a, b):
            ff.navigate(url)
        if args.receiver_grant == "gum":
            b.eval_json("navigator.mediaDevices.getUserMedia({audio: true}).then((s) => s.getTracks().length)")
        mark("navigated")
        report["title"] = b.eval_json("document.title")
        sent = a.eval_json(f"lab.sender({{simulcast: {'true' if args.simulcast else 'false'}}})", timeout=30)
        mark("offer")
        report["fake_devices"] = sent["tracks"]
        offer = sent["offer"]
        report["offer_candidates"] = re.findall(r"a=candidate:\S+ 1 (?:UDP|udp) \d+ (\S+) \d+ typ host", offer)
        recv_offer = offer if not args.simulcast else "\r\n".join(
            l for l in offer.split("\r\n") if not l.startswith(("a=rid:", "a=simulcast:")))
        got = b.eval_json(f"lab.receiver({json.dumps(recv_offer)})", timeout=30)
        mark("answer")
        answer = got["answer"] if not args.simulcast else munge_answer_for_simulcast(got["answer"])
        report["sender_state"] = a.eval_json(f"lab.senderAnswer({json.dumps(answer)})")
        mark("answer_applied")
        deadline = time.monotonic() + args.timeout
        st = None
        while time.monotonic() < deadline:
            st = b.eval_json("lab.state()")
            vin = [s for s in st["stats"]["inbound"] if s.get("kind") == "video"]
            ain = [s for s in st["stats"]["inbound"] if s.get("kind") == "audio"]
            if any(s.get("framesDecoded", 0) > 0 for s in vin) and any(s.get("totalAudioEnergy", 0) > 0 for s in ain):
                ok = True
                break
            time.sleep(0.25)
        report["first_media_s"] = round(time.monotonic() - t0, 2)
        report["receiver_first"] = st
        time.sleep(2)  # let rates settle
        report["sender"] = a.eval_json("lab.state()")
        report["receiver"] = b.eval_json("lab.state()")
        report["local_colours"] = a.eval_json("lab.colours('local', 8, 250)")
        report["remote_colours"] = b.eval_json("lab.colours('remote', 4, 250)")
        report["local_fps"] = a.eval_json("lab.fps('local', 2000)")
        report["remote_fps"] = b.eval_json("lab.fps('remote', 2000)")
        if args.hold > 0:
            pa, pb = a.pids(), b.pids()
            c0 = (cpu_ticks(pa), cpu_ticks(pb), time.monotonic())
            time.sleep(args.hold)
            pa2, pb2 = a.pids(), b.pids()
            c1 = (cpu_ticks(pa2), cpu_ticks(pb2), time.monotonic())
            dt = c1[2] - c0[2]
            report["cpu_percent_of_one_core"] = {"A_sender": round(100 * (c1[0] - c0[0]) / CLK / dt, 1),
                                                 "B_receiver": round(100 * (c1[1] - c0[1]) / CLK / dt, 1)}
            report["pss_mib"] = {"A": round(pss_kib(pa2) / 1024), "B": round(pss_kib(pb2) / 1024)}
            report["processes"] = {"A": len(pa2), "B": len(pb2)}
            report["sender_after_hold"] = a.eval_json("lab.state()")["stats"]["outbound"]
            report["receiver_after_hold"] = b.eval_json("lab.state()")["stats"]["inbound"]
        b.set_viewport(800, 600)
        shot = args.screenshot or os.path.join(args.scratch, "firefox-selfcheck.png")
        b.screenshot(shot)
        report["screenshot"] = shot
    except Exception as e:  # noqa: BLE001
        report["error"] = repr(e)
        ok = False
    finally:
        t_stop = time.monotonic()
        for ff in browsers.values():
            ff.stop()
        report["stop_s"] = round(time.monotonic() - t_stop, 2)
        server.shutdown()
        for d in CERT_DIRS:
            shutil.rmtree(d, ignore_errors=True)
    report["result"] = "PASS" if ok else "FAIL"
    report["total_s"] = round(time.monotonic() - t0, 2)
    text = json.dumps(report, indent=1, ensure_ascii=False)
    if args.json:
        open(args.json, "w").write(text)
    print(text)
    print(f"firefox-selfcheck: {report['result']} in {report['total_s']} s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
