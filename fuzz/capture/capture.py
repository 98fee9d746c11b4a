#!/usr/bin/env python3
"""Records what real Chromium sends between two RTCPeerConnections over loopback, unencrypted.

    capture.py OUTDIR SECONDS -- chromium-webrtc.sh URL --disable-webrtc-encryption

Must run as root (an AF_PACKET socket on lo). Starts the given command, records every
UDP datagram and every TCP byte stream on lo for SECONDS, stops the command, then writes
OUTDIR/udp/NNNNN.bin (one datagram each) and OUTDIR/tcp/NNN.bin (one direction of a TCP
connection each, as received). Packets of the page's HTTP server are skipped (--skip-port).
--tcp-listen PORT accepts TCP connections on 127.0.0.1:PORT and reads them without answering:
the passive ICE-TCP end that Chromium (which gathers only active TCP candidates) connects to.
"""
import os, socket, struct, subprocess, sys, time, signal, threading

def main():
    out, secs = sys.argv[1], float(sys.argv[2])
    skip = set()
    args = sys.argv[3:]
    while args and args[0] == '--skip-port':
        skip.add(int(args[1])); args = args[2:]
    if args and args[0] == '--tcp-listen':
        listener = socket.create_server(('127.0.0.1', int(args[1])))
        args = args[2:]
        def serve():
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=lambda c=conn: [None for _ in iter(lambda: c.recv(4096), b'')], daemon=True).start()
        threading.Thread(target=serve, daemon=True).start()
    if args and args[0] == '--':
        args = args[1:]
    os.makedirs(out + '/udp', exist_ok=True)
    os.makedirs(out + '/tcp', exist_ok=True)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind(('lo', 0))
    s.settimeout(0.2)
    child = subprocess.Popen(args, start_new_session=True)
    udp, tcp = [], {}
    end = time.time() + secs
    while time.time() < end:
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:  # lo shows each packet twice
            continue
        ip = frame[14:]
        if len(ip) >= 20 and ip[0] >> 4 == 4:
            ihl = (ip[0] & 15) * 4
            total = struct.unpack('!H', ip[2:4])[0]
            proto, l4, src, dst = ip[9], ip[ihl:total], ip[12:16], ip[16:20]
        elif len(ip) >= 40 and ip[0] >> 4 == 6:  # no extension headers on loopback
            proto, l4, src, dst = ip[6], ip[40:40 + struct.unpack('!H', ip[4:6])[0]], ip[8:24], ip[24:40]
        else:
            continue
        if proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack('!HH', l4[:4])
            if sport in skip or dport in skip or 53 in (sport, dport):
                continue
            udp.append(l4[8:])
        elif proto == 6 and len(l4) >= 20:
            sport, dport, seq = struct.unpack('!HHI', l4[:8])
            if sport in skip or dport in skip:
                continue
            off = (l4[12] >> 4) * 4
            data = l4[off:]
            if data:
                conn = tcp.setdefault((src, sport, dst, dport), {})
                conn.setdefault(seq, data)  # retransmissions keep the first copy
    os.killpg(child.pid, signal.SIGTERM)
    child.wait()
    for i, d in enumerate(udp):
        open(f'{out}/udp/{i:05}.bin', 'wb').write(d)
    for i, conn in enumerate(tcp.values()):
        open(f'{out}/tcp/{i:03}.bin', 'wb').write(b''.join(conn[k] for k in sorted(conn)))
    print(f'{len(udp)} datagrams, {len(tcp)} tcp streams', file=sys.stderr)

main()
