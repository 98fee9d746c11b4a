#!/usr/bin/env python3
"""Prints what matters to the bridge in SDP files: per m-section the port, bundle-only,
direction, mid, rids / simulcast, SSRC lines and groups, header extensions, codecs with
payload types (H264 profile-level-id / packetization-mode), RTX / RED / ULPFEC, candidates.

    python3 tests/lab/sdp-summary.py FILE.sdp [...]
"""
import re
import sys


def summary(path):
    raw = open(path, "rb").read()
    text = raw.decode()
    crlf = raw.count(b"\r\n")
    lf = raw.count(b"\n")
    lines = text.replace("\r\n", "\n").split("\n")
    out = [f"== {path}: {len(raw)} bytes, {'CRLF' if crlf == lf else f'{crlf} CRLF of {lf} LF'}"]
    session = [l for l in lines[: next((i for i, l in enumerate(lines) if l.startswith("m=")), len(lines))]]
    for l in session:
        if l.startswith(("o=", "a=group", "a=extmap-allow-mixed", "a=msid-semantic", "a=ice-lite", "a=ice-options", "a=fingerprint", "a=setup")):
            out.append("  session " + (l if not l.startswith("a=fingerprint") else l[:30] + "..."))
    sections = []
    cur = None
    for l in lines:
        if l.startswith("m="):
            cur = {"m": l, "attrs": []}
            sections.append(cur)
        elif cur is not None and l:
            cur["attrs"].append(l)
    for s in sections:
        a = s["attrs"]
        get = lambda p: [x[len(p):] for x in a if x.startswith(p)]
        rtpmap = {}
        for v in get("a=rtpmap:"):
            pt, codec = v.split(" ", 1)
            rtpmap[pt] = codec
        fmtp = {}
        for v in get("a=fmtp:"):
            pt, params = v.split(" ", 1)
            fmtp[pt] = params
        m = s["m"].split(" ")
        pts = m[3:]
        codecs = []
        for pt in pts:
            c = rtpmap.get(pt, "?")
            f = fmtp.get(pt, "")
            if c.lower().startswith("rtx/"):
                codecs.append(f"{pt}:rtx({f.replace('apt=', '')})")
            elif c.upper().startswith("H264"):
                d = dict(kv.split("=", 1) for kv in f.split(";") if "=" in kv)
                codecs.append(f"{pt}:H264[{d.get('profile-level-id')},pm={d.get('packetization-mode', '0')}]")
            else:
                codecs.append(f"{pt}:{c.split('/')[0]}")
        direction = next((x[2:] for x in a if x in ("a=sendonly", "a=recvonly", "a=sendrecv", "a=inactive")), "sendrecv(default)")
        cands = get("a=candidate:")
        ctypes = {}
        for c in cands:
            f = c.split(" ")
            key = f"{f[2].lower()}/{f[1]}:{f[4]}"
            ctypes[key] = ctypes.get(key, 0) + 1
        ssrcs = sorted({x.split(" ")[0] for x in get("a=ssrc:")})
        out.append(f"  {s['m'].split(' ')[0]} port={m[1]} mid={','.join(get('a=mid:'))} {direction}"
                   + (" bundle-only" if "a=bundle-only" in a else "")
                   + (f" msid={get('a=msid:')[0].split(' ')[0][:12]}..." if get("a=msid:") else " no-a=msid"))
        out.append(f"    setup={','.join(get('a=setup:'))} rtcp-mux={'a=rtcp-mux' in a} rsize={'a=rtcp-rsize' in a}"
                   + f" rtcp={','.join(get('a=rtcp:'))} xr={','.join(get('a=rtcp-xr:')) or '-'}"
                   + f" extmap-allow-mixed={'a=extmap-allow-mixed' in a} end-of-candidates={'a=end-of-candidates' in a}")
        if cands:
            out.append(f"    candidates {len(cands)}: " + ", ".join(f"{k} x{v}" for k, v in ctypes.items()))
        out.append("    extmap " + "; ".join(get("a=extmap:")))
        out.append("    codecs " + " ".join(codecs))
        fb = {}
        for v in get("a=rtcp-fb:"):
            pt, what = v.split(" ", 1)
            fb.setdefault(pt, []).append(what)
        first = pts[0] if pts else None
        if first in fb:
            out.append(f"    rtcp-fb {first}: {', '.join(fb[first])}")
        if get("a=rid:") or get("a=simulcast:"):
            out.append(f"    rid {get('a=rid:')} simulcast {get('a=simulcast:')}")
        if ssrcs:
            out.append(f"    ssrc {len(ssrcs)} ({', '.join(sorted({x.split(' ', 1)[1].split(':')[0] for x in get('a=ssrc:')}))})"
                       + f" groups {get('a=ssrc-group:')}")
    return "\n".join(out)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(summary(p))
