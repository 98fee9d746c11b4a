#!/usr/bin/env python3
"""Turns captures (capture.py) into the committed seed files of fuzz/seeds/<target>/.

    make_seeds.py SEEDS_DIR vp8=/tmp/cap-vp8 h264=/tmp/cap-h264 remb=/tmp/cap-remb tcp=/tmp/cap-tcp

Each capture directory comes with the Chromium log the page printed its offer to
(<dir>.log), from which payload types are read. Chosen so the set stays small (a few dozen
files per target, payloads cut to 256 bytes where only their headers are parsed); synthetic
seeds (marked syn_ in their names) are added where a capture cannot show a case.
"""
import glob, hashlib, hmac, json, os, re, shutil, struct, sys, zlib

COOKIE = b'\x21\x12\xa4\x42'
PWD = b'fuzzfuzzfuzzfuzzfuzzfuzz'   # fuzz/targets.rs: LOCAL_UFRAG, REMOTE_UFRAG, PWD
USERNAME = b'fuzz:peer'
CUT = 256

out = sys.argv[1]
caps = dict(a.split('=', 1) for a in sys.argv[2:])


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), 'wb').write(data)


def datagrams(cap):
    return [open(f, 'rb').read() for f in sorted(glob.glob(cap + '/udp/*.bin'))]


def rtpmap(cap):
    text = open(cap + '.log', errors='replace').read()
    sdp = json.loads(re.search(r'"offer (".*?")", source', text).group(1))
    return {int(m.group(1)): m.group(2).lower() for m in re.finditer(r'a=rtpmap:(\d+) ([^/\r]+)', sdp)}, sdp


def kind(d):
    b = d[0]
    if b < 4:
        return 'stun'
    if 128 <= b <= 191:
        return 'rtcp' if len(d) > 1 and 192 <= d[1] <= 223 else 'rtp'
    return 'other'


def rtp_parts(d):
    """(payload type, ssrc, payload) of an RTP packet."""
    cc, x, pad = d[0] & 15, d[0] & 16, d[0] & 32
    off = 12 + 4 * cc
    if x:
        off += 4 + 4 * struct.unpack('!H', d[off + 2:off + 4])[0]
    end = len(d) - (d[-1] if pad else 0)
    return d[1] & 127, struct.unpack('!I', d[8:12])[0], d[off:end]


def framed(*ds):
    return b''.join(struct.pack('!H', len(d)) + d for d in ds)


def stun_attrs(m):
    attrs, off, end = [], 20, 20 + struct.unpack('!H', m[2:4])[0]
    while off + 4 <= min(end, len(m)):
        t, l = struct.unpack('!HH', m[off:off + 4])
        attrs.append((t, m[off + 4:off + 4 + l]))
        off += 4 + ((l + 3) & ~3)
    return attrs


def resign(m, use_candidate=None):
    """A captured Binding request with USERNAME fuzz:peer, signed again with PWD (so that
    ICE-lite's answer goes all the way), USE-CANDIDATE added or removed if asked."""
    attrs = [(t, USERNAME if t == 0x0006 else v) for t, v in stun_attrs(m) if t not in (0x0008, 0x8028)]
    if use_candidate is False:
        attrs = [(t, v) for t, v in attrs if t != 0x0025]
    elif use_candidate and all(t != 0x0025 for t, _ in attrs):
        attrs.append((0x0025, b''))
    body = b''.join(struct.pack('!HH', t, len(v)) + v + b'\0' * (-len(v) % 4) for t, v in attrs)
    head = lambda extra: m[0:2] + struct.pack('!H', len(body) + extra) + COOKIE + m[8:20]
    body += struct.pack('!HH', 0x0008, 20) + hmac.new(PWD, head(24) + body, hashlib.sha1).digest()
    fp = (zlib.crc32(head(8) + body) ^ 0x5354554E) & 0xFFFFFFFF
    return head(8) + body + struct.pack('!HHI', 0x8028, 4, fp)


def rtcp_types(d):
    types, off = [], 0
    while off + 4 <= len(d):
        types.append((d[off + 1], d[off] & 31))
        off += 4 * (struct.unpack('!H', d[off + 2:off + 4])[0] + 1)
    return tuple(types)


for t in os.listdir(out) if os.path.isdir(out) else []:
    shutil.rmtree(os.path.join(out, t))

# --- SDP: the capture pages' offers (the recorded offers and answers of
# src/peer/lean/sdp/testdata/ are the other seed directory of this target).
for name, cap in caps.items():
    if name != 'tcp':
        put('sdp', f'capture_{name}_offer.sdp', rtpmap(cap)[1].encode())

# --- STUN and ICE-TCP.
stun_seen, requests = set(), []
for name, cap in caps.items():
    for d in datagrams(cap):
        if kind(d) != 'stun':
            continue
        key = (d[0:2], len(d), any(t == 0x0025 for t, _ in stun_attrs(d)))
        if d[0:2] == b'\x00\x01':
            requests.append(d)
        if key not in stun_seen and len(stun_seen) < 12:
            stun_seen.add(key)
            put('stun', f'{name}_{d[0:2].hex()}_{len(d)}.bin', d)
for i, d in enumerate(requests[:2]):
    put('stun', f'resigned_{i}_use_candidate.bin', resign(d, True))
    put('stun', f'resigned_{i}_plain.bin', resign(d, False))
if 'tcp' in caps:
    streams = [open(f, 'rb').read() for f in sorted(glob.glob(caps['tcp'] + '/tcp/*.bin'))]
    for i, s in enumerate(streams[:3]):
        frames, off = [], 0
        while off + 2 <= len(s) and len(frames) < 3:
            n = struct.unpack('!H', s[off:off + 2])[0]
            frames.append(s[off + 2:off + 2 + n])
            off += 2 + n
        put('ice_tcp', f'tcp_{i}_first_frames.bin', framed(*frames))
        put('stun', f'tcp_{i}_check.bin', frames[0])
    media = [d for d in datagrams(caps.get('vp8', caps['tcp'])) if kind(d) in ('rtp', 'rtcp')]
    if streams and media:
        first = struct.unpack('!H', streams[0][:2])[0]
        check = streams[0][2:2 + first]
        put('ice_tcp', 'tcp_check_then_media.bin', framed(check, *[m[:CUT] for m in media[:4]]))
        put('ice_tcp', 'resigned_check_then_media.bin', framed(resign(check, True), *[m[:CUT] for m in media[4:8]]))
        put('ice_tcp', 'syn_first_frame_too_short.bin', struct.pack('!H', 19) + check[:19])
        put('ice_tcp', 'syn_media_first.bin', framed(*[m[:CUT] for m in media[:2]]))

# --- RTP (windows of consecutive packets of one stream, after the config byte of
# targets::rtp: 0 audio/Opus, 1 video/VP8, 2 video/H.264), RTCP, VP8 and H.264 payloads.
config = {'opus': 0, 'vp8': 1, 'h264': 2}
rtcp_seen, vp8_seen, h264_seen = set(), set(), set()
for name, cap in caps.items():
    if name == 'tcp':
        continue
    pts, _ = rtpmap(cap)
    packets = [d for d in datagrams(cap) if kind(d) == 'rtp']
    by_ssrc = {}
    for d in packets:
        pt, ssrc, payload = rtp_parts(d)
        by_ssrc.setdefault(ssrc, []).append((pts.get(pt), d, payload))
    for ssrc, stream in by_ssrc.items():
        codec = stream[0][0]
        if codec not in config or len(stream) < 10:
            continue
        for at in (0, len(stream) // 2):
            window = [d for _, d, _ in stream[at:at + 5]]
            put('rtp', f'{name}_{codec}_{ssrc:08x}_{at}.bin', bytes([config[codec]]) + framed(*window))
        for _, d, payload in stream:
            if codec == 'vp8' and payload:
                key = (payload[0] & 0xf0, len(payload) > 10 and payload[1] & 0xf0, payload[0] & 0x10 and (payload[4] if len(payload) > 4 else 0) & 1)
                if key not in vp8_seen and len(vp8_seen) < 16:
                    vp8_seen.add(key)
                    put('vp8', f'{name}_{len(vp8_seen):02}.bin', payload[:CUT])
            if codec == 'h264' and payload:
                key = (payload[0] & 0x1f, len(payload) > 1 and payload[1] & 0xe0)
                if key not in h264_seen and len(h264_seen) < 16:
                    h264_seen.add(key)
                    put('h264', f'{name}_{len(h264_seen):02}.bin', payload[:CUT])
    mixed = packets[len(packets) // 3:len(packets) // 3 + 6]
    put('rtp', f'{name}_mixed.bin', bytes([config['h264' if name == 'h264' else 'vp8']]) + framed(*mixed))
    for d in datagrams(cap):
        if kind(d) == 'rtcp':
            key = rtcp_types(d)
            if key not in rtcp_seen and len(rtcp_seen) < 20:
                rtcp_seen.add(key)
                put('rtcp', f'{name}_' + '_'.join(f'{pt}-{fmt}' for pt, fmt in key) + '.bin', d)

# Synthetic RTCP: what Chromium sends to the bridge but not between two unimpaired pages.
def rtcp(pt, fmt, body):
    return struct.pack('!BBH', 0x80 | fmt, pt, len(body) // 4) + body
S, M = struct.pack('!I', 0x11223344), struct.pack('!I', 0x55667788)
put('rtcp', 'syn_nack.bin', rtcp(205, 1, S + M + struct.pack('!HH', 1000, 0b1010000000000101) + struct.pack('!HH', 65530, 0xffff)))
put('rtcp', 'syn_pli.bin', rtcp(206, 1, S + M))
put('rtcp', 'syn_fir.bin', rtcp(206, 4, S + b'\0' * 4 + M + struct.pack('!B3x', 7)))
put('rtcp', 'syn_remb.bin', rtcp(206, 15, S + b'\0' * 4 + b'REMB' + struct.pack('!B', 2) + bytes([0x0f, 0x42, 0x40]) + M + S))
put('rtcp', 'syn_bye.bin', rtcp(203, 1, S))
put('rtcp', 'syn_rr_pli_nack.bin', rtcp(201, 1, S + M + bytes(20)) + rtcp(206, 1, S + M) + rtcp(205, 1, S + M + struct.pack('!HH', 7, 0)))
put('rtcp', 'syn_xr_rrtr.bin', rtcp(207, 0, S + struct.pack('!BBH', 4, 0, 2) + bytes(8)))

# Synthetic VP8 descriptors: 7-bit PictureID, TL0PICIDX and TID/KEYIDX, a cut descriptor.
for name, d in [('pid7', bytes([0x90, 0x80, 0x05, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00])),
                ('tl0_tid', bytes([0x90, 0xe0, 0x81, 0x23, 0x45, 0x40, 0x00])), ('cut', bytes([0x90, 0x80]))]:
    put('vp8', f'syn_{name}.bin', d)
# Synthetic H.264: a STAP-A whose second size runs past the end, an FU-A end fragment.
put('h264', 'syn_stap_a_cut.bin', bytes([0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x30, 0x68]))
put('h264', 'syn_fu_a_end.bin', bytes([0x7c, 0x45, 0x11, 0x22]))

# --- Signalling JSON: every kind of message the web client (web/protocol.js) sends.
sdp_text = rtpmap(caps['vp8'])[1] if 'vp8' in caps else 'v=0\r\n'
messages = [
    {'type': 'join', 'site': 'hang-gai', 'ticket': 'dcj_0123456789abcdef'},
    {'type': 'join', 'site': 'hang-gai', 'ticket': 'dcj_0123456789abcdef', 'resume': 'r_abc'},
    {'type': 'offer', 'sdp': sdp_text[:600]}, {'type': 'answer', 'sdp': 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n'},
    {'type': 'candidate', 'candidate': {'candidate': 'candidate:1 1 udp 2122194687 127.0.0.1 38148 typ host', 'sdp_mid': '0', 'sdpMLineIndex': 0, 'username_fragment': 'jB1v'}},
    {'type': 'leave'}, {'type': 'ping'}, {'type': 'mute', 'audio': True, 'video': False},
    {'type': 'request_floor', 'topic': 'Ý kiến về ngân sách'}, {'type': 'cancel_floor'}, {'type': 'release_floor'},
    {'type': 'grant_floor', 'request': 3}, {'type': 'deny_floor', 'request': 18446744073709551615},
    {'type': 'give_floor', 'site': 'hang-trong'}, {'type': 'revoke_floor', 'site': 'hang-trong'},
    {'type': 'mute_site', 'site': 'hang-gai', 'muted': True}, {'type': 'mute_all', 'muted': False},
    {'type': 'set_layout', 'layout': 'grid'},
    {'type': 'set_agenda', 'items': [{'title': 'Khai mạc', 'kind': 'speech', 'site': 'hq', 'planned_minutes': 5}]},
    {'type': 'next_item'}, {'type': 'lock', 'locked': True}, {'type': 'admit', 'site': 'hang-bac'},
    {'type': 'share_start', 'track': '{0b1c}'}, {'type': 'share_stop'},
    {'type': 'stats', 'report': {'rtt_ms': 12.5, 'candidate': 'host', 'received': {'hq': {}}}},
    {'type': 'start_conference'}, {'type': 'end_conference'}, {'type': 'view_page', 'page': 2},
    {'type': 'start_recording'}, {'type': 'stop_recording'},
    {'type': 'attendance', 'attendees': 'Phường Hàng Gai, Phường Hàng Trống', 'headcount': 12},
]
for m in messages:
    put('signal_json', f"{m['type']}_{hashlib.sha1(json.dumps(m).encode()).hexdigest()[:6]}.json", json.dumps(m, ensure_ascii=False).encode())
put('signal_json', 'syn_unknown_type.json', b'{"type":"nope"}')
put('signal_json', 'syn_not_json.json', b'{"type":"join","site":')

for t in sorted(os.listdir(out)):
    files = os.listdir(os.path.join(out, t))
    print(t, len(files), 'files,', sum(os.path.getsize(os.path.join(out, t, f)) for f in files), 'bytes')
