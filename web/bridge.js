// @ts-check
/**
 * The media side of one site: signs in with the site's key (`POST /api/session`: a session
 * token and a one-use join ticket), joins over the signalling socket with the ticket,
 * publishes the local camera and microphone once, receives every other site's media from the
 * server, and reconnects by itself (signing in again each time). No DOM here: the page
 * subscribes to events and renders them.
 *
 * Events (via `on(name, fn)`):
 *  - status  {phase, detail}  phase: connecting | joining | negotiating | connected | flowing |
 *                             reconnecting | locked_waiting | replaced | error
 *  - joined  the `joined` message
 *  - state   the whole conference state (sites, floor, layout, agenda…)
 *  - floor   a floor event {event, request, site}
 *  - speaking  {active, levels}: the active speaker and audio levels
 *  - track   {slot, kind, track}   one of the server's output slots (`a0…`, `v0…`, `c0`)
 *  - view    which site each slot carries now ({video, audio, content, page, pages})
 */
import { Signalling, FATAL_JOIN_CODES } from "./protocol.js";

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
/** How often a site waiting at a locked conference asks again. */
const LOCKED_RETRY_MS = 5000;
/** Media not up on both sides this long after the offer: recover as from a drop. */
const MEDIA_START_MS = 30000;

/**
 * Simulcast layers for a camera, by its resolution: the bridge sends each receiver the layer
 * that fits its tile (high for HQ and the speaker, low for thumbnails). Below 640x360 a camera
 * sends one encoding (the browser would drop layers that small anyway).
 * @param {MediaStreamTrack} track
 * @returns {RTCRtpEncodingParameters[] | undefined}
 */
export function simulcastLayers(track) {
  const { width = 0, height = 0 } = track.getSettings();
  const pixels = width * height;
  if (pixels >= 960 * 540) {
    return [
      { rid: "l", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
      { rid: "m", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
      { rid: "h", maxBitrate: 1_500_000 },
    ];
  }
  if (pixels >= 640 * 360) {
    return [{ rid: "l", scaleResolutionDownBy: 2, maxBitrate: 200_000 }, { rid: "h", maxBitrate: 800_000 }];
  }
  return undefined;
}

/**
 * Puts one codec first in what the camera offers (e.g. "h264" for a room whose PC decodes
 * H.264 in hardware); the bridge takes the browser's first codec that the meeting forwards.
 * Browsers without setCodecPreferences, or without the codec, keep their own order.
 * @param {RTCRtpTransceiver} transceiver
 * @param {string} name
 */
export function preferCodec(transceiver, name) {
  if (typeof transceiver.setCodecPreferences !== "function") return;
  const mime = `video/${name}`.toLowerCase();
  // H.264: constrained baseline in packetization mode 1 first, as the bridge forwards it.
  const rank = (/** @type {RTCRtpCodec} */ c) => {
    if (c.mimeType.toLowerCase() !== mime) return 2;
    const f = c.sdpFmtpLine || "";
    return name.toLowerCase() === "h264" && !(f.includes("packetization-mode=1") && f.includes("profile-level-id=42e0")) ? 1 : 0;
  };
  // The spec lists receiver capabilities; some versions want the sender's for a send-only
  // transceiver: try both.
  for (const source of [RTCRtpReceiver, RTCRtpSender]) {
    const caps = typeof source.getCapabilities === "function" ? source.getCapabilities("video") : null;
    const codecs = (caps?.codecs || []).slice().sort((a, b) => rank(a) - rank(b));
    if (!codecs.length || rank(codecs[0]) === 2) continue;
    try {
      transceiver.setCodecPreferences(codecs);
      return;
    } catch (e) {
      console.warn("codec preference", e);
    }
  }
}

export class BridgeClient {
  /**
   * @param {{wsUrl: string, site: string, key: string, localStream: MediaStream, relayOnly?: boolean, preferCodec?: string}} opts
   */
  constructor(opts) {
    this.opts = opts;
    /** @type {Record<string, Function[]>} */
    this.listeners = {};
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {Signalling|null} */
    this.sig = null;
    /** mid → output slot id (`a0`, `v3`, `c0`), for mapping receive statistics to sites */
    /** @type {Map<string, string>} */
    this.slotByMid = new Map();
    /** @type {import("./protocol.js").ViewMessage} */
    this.view = { video: [], audio: [], content: null, page: 0, pages: 1, paused: [] };
    this.attempt = 0;
    this.stopped = false;
    /** Time the signalling socket opened (performance.now()), per attempt. */
    this.connectedAt = 0;
    this.lastHeard = 0;
    /** @type {string|undefined} token to resume the seat after a lost connection */
    this.resume = undefined;
    /** The server's last reported state of this page's media connection. */
    this.serverMedia = "connecting";
    /** @type {any} */
    this.iceTimer = undefined;
    /** @type {any} */
    this.rejoinTimer = undefined;
    /** @type {any} media not up this long after the offer: recover */
    this.startTimer = undefined;
    /** @type {any} */
    this.reportTimer = undefined;
    /** @type {Map<string, any>|null} */
    this.lastReport = null;
    this.wantOffer = false;
    /** @type {RTCRtpTransceiver|null} */
    this.contentTransceiver = null;
    /** @type {null | (() => Promise<void>)} */
    this.shareAllowed = null;
    /** @type {null | ((m: any) => void)} */
    this.shareRefused = null;
    /** @type {Promise<void>} serialises handling of server messages */
    this.queue = Promise.resolve();
    /** @type {string} the REST session token of the last sign-in (for the page's API calls) */
    this.token = "";
  }

  /** Exchanges the site's key for a join ticket (and a REST token). */
  async signIn() {
    const r = await fetch("/api/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ site: this.opts.site, key: this.opts.key }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error(body.message || `HTTP ${r.status}`), { code: body.code });
    this.token = body.token;
    return /** @type {string} */ (body.ticket);
  }

  /** @param {string} name @param {Function} fn */
  on(name, fn) { (this.listeners[name] ||= []).push(fn); return this; }
  /** @param {string} name @param {any} data */
  emit(name, data) { for (const fn of this.listeners[name] || []) fn(data); }
  /** @param {string} phase @param {any} [detail] */
  status(phase, detail) { this.phase = phase; this.emit("status", { phase, detail }); }

  start() { this.connect(); }

  stop() {
    this.stopped = true;
    this.sig?.leave();
    this.teardown();
  }

  teardown() {
    this.sig?.close();
    this.sig = null;
    this.pc?.close();
    this.pc = null;
    this.slotByMid.clear();
  }

  connect() {
    if (this.stopped) return;
    this.teardown();
    // While waiting at a locked conference the page keeps saying so between tries.
    if (this.phase !== "locked_waiting") this.status(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    this.signIn().then((ticket) => this.open(ticket), (e) => {
      if (FATAL_JOIN_CODES.has(e.code)) {
        this.stopped = true;
        this.status("error", { code: e.code, message: e.message });
      } else {
        this.retry(0);
      }
    });
  }

  /** @param {number} code */
  retry(code) {
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.status("reconnecting", { attempt: this.attempt, delayMs: delay, code });
    setTimeout(() => this.connect(), delay);
  }

  /** @param {string} ticket */
  open(ticket) {
    if (this.stopped) return;
    const sig = new Signalling(this.opts.wsUrl, {
      onMessage: (m) => { this.queue = this.queue.then(() => this.onMessage(m)).catch((e) => this.fail(e)); },
      onClose: (code, reason) => this.onClose(sig, code, reason),
    });
    this.sig = sig;
    sig.opened.then(() => {
      this.connectedAt = performance.now();
      this.lastHeard = Date.now();
      this.status("joining");
      sig.join(this.opts.site, ticket, this.resume);
      // Keep-alive both ways: the server drops sockets silent for 45 s, and a socket that
      // has not answered for 30 s is taken as dead here and replaced.
      const timer = setInterval(() => {
        if (sig !== this.sig) return clearInterval(timer);
        if (Date.now() - this.lastHeard > 30000) { clearInterval(timer); sig.close(); return; }
        sig.ping();
      }, 15000);
    }).catch(() => { /* onClose follows */ });
  }

  /** @param {Signalling} sig @param {number} code @param {string} reason */
  onClose(sig, code, reason) {
    if (sig !== this.sig || this.stopped) return;
    if (reason === "replaced" || this.phase === "replaced") {
      this.stopped = true;
      this.teardown();
      this.status("replaced");
      return;
    }
    if (this.phase === "error") return;
    this.retry(code);
  }

  /** @param {any} e */
  fail(e) {
    console.error(e);
    this.emit("status", { phase: "warning", detail: { message: String(e && e.message || e) } });
  }

  /** @param {import("./protocol.js").ServerMessage} m */
  async onMessage(m) {
    this.lastHeard = Date.now();
    switch (m.type) {
      case "joined":
        this.attempt = 0;
        this.resume = m.resume;
        this.emit("joined", m);
        await this.startMedia(m.ice_servers);
        break;
      case "view":
        this.view = m;
        this.emit("view", m);
        break;
      case "state":
        if (this.shareAllowed && m.sharing === this.opts.site) await this.shareAllowed();
        this.emit("state", m);
        break;
      case "floor":
        this.emit("floor", m);
        break;
      case "speaking":
        this.emit("speaking", m);
        break;
      case "answer":
        await this.pc?.setRemoteDescription({ type: "answer", sdp: m.sdp });
        break;
      case "offer": {
        const pc = this.pc;
        if (!pc) return;
        // Glare: the server's offer wins; ours is rolled back and sent again afterwards.
        if (pc.signalingState === "have-local-offer") {
          await pc.setLocalDescription({ type: "rollback" });
          this.wantOffer = true;
        }
        await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        this.sig?.answer(pc.localDescription?.sdp || answer.sdp || "");
        if (this.wantOffer) await this.negotiate();
        break;
      }
      case "candidate":
        await this.pc?.addIceCandidate(m.candidate).catch((e) => console.warn("candidate", e));
        break;
      case "media":
        // The server's side of the media connection can disagree with the browser's (after an
        // ICE restart the browser may see "connected" while the bridge gets nothing): recover
        // on either side's trouble.
        this.serverMedia = m.state;
        if (m.state === "connected") {
          if (["connected", "completed"].includes(this.pc?.iceConnectionState || "")) this.mediaUp();
          this.status("connected");
        } else if (m.state === "failed" || m.state === "disconnected") {
          this.status("media_" + m.state);
          const pc = this.pc;
          if (pc && !this.iceTimer && !this.rejoinTimer) this.iceTimer = setTimeout(() => this.recoverMedia(pc), m.state === "failed" ? 0 : 2000);
        }
        break;
      case "replaced":
        this.status("replaced", { message: m.message });
        break;
      case "restarting":
        this.status("restarting");
        break;
      case "revoked":
        // The site's key was re-issued: this page's key is dead; only the new link works.
        this.stopped = true;
        this.status("error", { code: "key_rotated", message: m.message });
        this.teardown();
        break;
      case "dropped":
        // A technician reset this session: the socket closes and we join again.
        this.status("reconnecting", { attempt: this.attempt + 1 });
        break;
      case "restart_ice":
        if (this.pc) {
          this.pc.restartIce();
          if (this.pc.signalingState === "stable") await this.negotiate();
          else this.wantOffer = true;
        }
        break;
      case "error":
        if (m.request === "offer" && m.code === "negotiation_failed" && this.pc?.signalingState === "have-local-offer") {
          await this.pc.setLocalDescription({ type: "rollback" });
          this.wantOffer = true;
        }
        if (m.request === "share_start") this.shareRefused?.(m);
        if (m.request === "join" && FATAL_JOIN_CODES.has(m.code)) {
          this.stopped = true;
          this.status("error", { code: m.code, message: m.message });
          this.teardown();
        } else if (m.request === "join" && m.code === "conference_locked") {
          // The chair sees this site waiting; ask again until it lets us in (or opens).
          this.status("locked_waiting");
          const sig = this.sig;
          this.sig = null;
          sig?.close();
          clearTimeout(this.rejoinTimer);
          this.rejoinTimer = setTimeout(() => { this.rejoinTimer = undefined; this.connect(); }, LOCKED_RETRY_MS);
        } else {
          this.emit("refused", m);
        }
        break;
    }
  }

  /** @param {RTCIceServer[]} iceServers */
  async startMedia(iceServers) {
    this.status("negotiating");
    this.serverMedia = "connecting";
    this.mediaUp();
    // relayOnly: every path through the TURN server (a site behind the strictest firewall,
    // or a technician checking that the relay works).
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle", iceTransportPolicy: this.opts.relayOnly ? "relay" : "all" });
    this.pc = pc;
    const local = this.opts.localStream;
    for (const track of local.getTracks()) {
      const sendEncodings = track.kind === "video" ? simulcastLayers(track) : undefined;
      const t = pc.addTransceiver(track, sendEncodings ? { direction: "sendonly", streams: [local], sendEncodings } : { direction: "sendonly", streams: [local] });
      if (track.kind === "video" && this.opts.preferCodec) preferCodec(t, this.opts.preferCodec);
    }
    pc.onicecandidate = (e) => { if (e.candidate) this.sig?.candidate(/** @type {import("./protocol.js").IceCandidate} */ (e.candidate.toJSON())); };
    pc.ontrack = (e) => {
      const slot = e.streams[0]?.id;
      if (!slot) return;
      if (e.transceiver.mid) this.slotByMid.set(e.transceiver.mid, slot);
      const kind = slot.startsWith("c") ? "content" : e.track.kind;
      this.emit("track", { slot, kind, track: e.track });
    };
    clearInterval(this.reportTimer);
    this.lastReport = null;
    this.reportTimer = setInterval(() => { this.reportStats().catch(() => {}); }, 3000);
    // Media trouble under a live socket: first an ICE restart over the socket; if media is
    // not back 8 s later, a full rejoin (the server holds the seat meanwhile).
    pc.oniceconnectionstatechange = () => {
      if (pc !== this.pc) return;
      const st = pc.iceConnectionState;
      if (st === "disconnected" || st === "failed") {
        this.status("media_disconnected");
        if (!this.iceTimer) this.iceTimer = setTimeout(() => this.recoverMedia(pc), st === "failed" ? 0 : 2000);
      } else if ((st === "connected" || st === "completed") && this.serverMedia === "connected") {
        this.mediaUp();
        if (this.phase === "media_disconnected") this.status("connected");
      }
    };
    this.contentTransceiver = null;
    // Media that never comes up (no answer to the checks, a handshake stuck on either side)
    // is recovered as a drop would be; the first "connected" from both sides clears this.
    this.startTimer = setTimeout(() => { this.startTimer = undefined; this.recoverMedia(pc); }, MEDIA_START_MS);
    await this.negotiate();
  }

  /** Media is up on both sides (or a new connection starts): no recovery is pending. */
  mediaUp() {
    clearTimeout(this.iceTimer);
    clearTimeout(this.rejoinTimer);
    clearTimeout(this.startTimer);
    this.iceTimer = this.rejoinTimer = this.startTimer = undefined;
  }

  /** @param {RTCPeerConnection} pc */
  async recoverMedia(pc) {
    this.iceTimer = undefined;
    const healthy = () => ["connected", "completed"].includes(pc.iceConnectionState) && this.serverMedia === "connected";
    if (pc !== this.pc || healthy()) return;
    // The bridge's side failed (a handshake that never completed): it accepts nothing more
    // on this connection, so no ICE restart can help. Join again with a fresh one.
    if (this.serverMedia === "failed") {
      this.sig?.close();
      return;
    }
    pc.restartIce();
    if (pc.signalingState === "stable") await this.negotiate();
    else this.wantOffer = true;
    this.rejoinTimer = setTimeout(() => {
      this.rejoinTimer = undefined;
      // Not healthy on both sides 8 s after the ICE restart: join again from scratch.
      if (pc === this.pc && !healthy()) this.sig?.close();
    }, 8000);
  }

  /** Sends an offer of this page's own (its media, or a new content track). */
  async negotiate() {
    const pc = this.pc;
    if (!pc) return;
    this.wantOffer = false;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.sig?.offer(pc.localDescription?.sdp || offer.sdp || "");
  }

  /**
   * Shares a video track (a screen, a window, slides) as content for every site. The server
   * decides first (the chair or the floor holder only); the track is sent only once allowed.
   * @param {MediaStreamTrack} track
   * @returns {Promise<void>} rejects with the server's refusal
   */
  share(track) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.shareAllowed = null; reject(new Error("no answer from the server")); }, 5000);
      this.shareAllowed = async () => {
        clearTimeout(timer);
        this.shareAllowed = this.shareRefused = null;
        if (this.contentTransceiver) {
          await this.contentTransceiver.sender.replaceTrack(track);
        } else if (this.pc) {
          this.contentTransceiver = this.pc.addTransceiver(track, { direction: "sendonly", streams: [new MediaStream([track])] });
          if (this.pc.signalingState === "stable") await this.negotiate();
          else this.wantOffer = true;
        }
        resolve();
      };
      this.shareRefused = (/** @type {any} */ m) => {
        clearTimeout(timer);
        this.shareAllowed = this.shareRefused = null;
        reject(Object.assign(new Error(m.message), { code: m.code }));
      };
      this.act({ type: "share_start", track: track.id });
    });
  }

  async stopShare() {
    await this.contentTransceiver?.sender.replaceTrack(null);
    this.act({ type: "share_stop" });
  }

  /**
   * Every few seconds, tells the server what this page receives (for the technicians):
   * round-trip time, connection type, and per sending site packets/frames per second and loss.
   */
  async reportStats() {
    const pc = this.pc;
    if (!pc || !this.sig) return;
    const report = await pc.getStats();
    const now = performance.now();
    /** @type {Record<string, {audio_pps: number, video_fps: number, loss_percent: number, jitter_ms: number}>} */
    const received = {};
    /** @type {number|undefined} */
    let rtt;
    /** @type {string|undefined} */
    let candidate;
    const prev = this.lastReport || new Map();
    /** @type {Map<string, {t: number, packets: number, lost: number, frames: number}>} */
    const next = new Map();
    report.forEach((s) => {
      if (s.type === "candidate-pair" && s.state === "succeeded" && s.nominated !== false && s.currentRoundTripTime !== undefined) {
        rtt = s.currentRoundTripTime * 1000;
        const local = report.get(s.localCandidateId);
        if (local) candidate = local.candidateType;
      }
      if (s.type !== "inbound-rtp" || !s.mid) return;
      const site = this.siteOf(this.slotByMid.get(s.mid));
      if (!site || site.includes(".")) return;
      const key = `${site}/${s.kind}`;
      const cur = { t: now, packets: s.packetsReceived || 0, lost: s.packetsLost || 0, frames: s.framesDecoded || 0 };
      next.set(key, cur);
      const p = prev.get(key);
      const r = (received[site] ||= { audio_pps: 0, video_fps: 0, loss_percent: 0, jitter_ms: 0 });
      r.jitter_ms = Math.max(r.jitter_ms, (s.jitter || 0) * 1000);
      if (!p) return;
      const dt = (cur.t - p.t) / 1000;
      const got = cur.packets - p.packets, lost = Math.max(0, cur.lost - p.lost);
      if (dt <= 0) return;
      if (s.kind === "audio") r.audio_pps = got / dt;
      else r.video_fps = (cur.frames - p.frames) / dt;
      if (got + lost > 0) r.loss_percent = Math.max(r.loss_percent, (lost * 100) / (got + lost));
    });
    this.lastReport = next;
    /** @type {any} */
    const msg = { type: "stats", report: { received } };
    if (rtt !== undefined) msg.report.rtt_ms = rtt;
    if (candidate) msg.report.candidate = candidate;
    this.sig.send(msg);
  }

  /** Sends a conference action (see docs/protocol.md); the server decides and answers with state. */
  /** @param {object} msg */
  act(msg) { this.sig?.send(msg); }

  /**
   * Asks the server to mute or unmute this site's own microphone/camera. The local tracks
   * follow the server's answer (`followMutes`), never the click: a refused unmute (the chair
   * holds the site muted) must not leave a track switched off that the server later unmutes.
   * @param {{audio?: boolean, video?: boolean}} m
   */
  mute(m) {
    this.act({ type: "mute", ...m });
  }

  /**
   * Sends another camera or microphone from now on (the room chose another device): the
   * sender switches without renegotiation, and the local stream holds the new track.
   * @param {MediaStreamTrack} track
   */
  async replaceLocalTrack(track) {
    const stream = this.opts.localStream;
    const old = stream.getTracks().find((t) => t.kind === track.kind);
    const sender = this.pc?.getSenders().find((s) => s.track && s.track === old);
    if (sender) await sender.replaceTrack(track);
    if (old) {
      track.enabled = old.enabled;
      stream.removeTrack(old);
      old.stop();
    }
    stream.addTrack(track);
  }

  /**
   * Enables the local tracks exactly when the server forwards them, so nothing leaves the
   * room while muted (by the site or the chair) and everything does once unmuted.
   * @param {{audio_muted?: boolean, hard_muted?: boolean, video_muted?: boolean}} site this site in `state`
   */
  followMutes(site) {
    const audio = !(site.audio_muted || site.hard_muted);
    this.opts.localStream.getAudioTracks().forEach((t) => { if (t.enabled !== audio) t.enabled = audio; });
    const video = !site.video_muted;
    this.opts.localStream.getVideoTracks().forEach((t) => { if (t.enabled !== video) t.enabled = video; });
  }

  /**
   * Receive statistics per remote site, from the browser's own getStats().
   * `audioCodec` is what the last audio packet carried: `audio/red` (Opus with redundancy) or `audio/opus`.
   * @returns {Promise<Record<string, {codec: string, audioCodec: string, framesDecoded: number, frameWidth: number, frameHeight: number,
   *   framesPerSecond: number, totalAudioEnergy: number, totalSamplesReceived: number,
   *   audioLevel: number, audioPacketsReceived: number, packetsLost: number, packetsReceived: number, jitterMs: number}>>}
   */
  /**
   * The site a slot carries now; content as `<site>.content`.
   * @param {string|undefined} slot
   * @returns {string|null}
   */
  siteOf(slot) {
    if (!slot) return null;
    const i = Number(slot.slice(1));
    if (slot[0] === "v") return this.view.video[i] || null;
    if (slot[0] === "a") return this.view.audio[i] || null;
    return this.view.content ? `${this.view.content}.content` : null;
  }

  /** @param {number} page */
  showPage(page) { this.sig?.send({ type: "view_page", page }); }

  async receiveStats() {
    /** @type {Record<string, any>} */
    const out = {};
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || !s.mid) return;
      const site = this.siteOf(this.slotByMid.get(s.mid));
      if (!site) return;
      const r = (out[site] ||= { codec: "", audioCodec: "", framesDecoded: 0, frameWidth: 0, frameHeight: 0, framesPerSecond: 0,
        totalAudioEnergy: 0, totalSamplesReceived: 0, audioLevel: 0, audioPacketsReceived: 0, packetsLost: 0, packetsReceived: 0, jitterMs: 0 });
      r.packetsLost += s.packetsLost || 0;
      r.packetsReceived += s.packetsReceived || 0;
      r.jitterMs = Math.max(r.jitterMs, (s.jitter || 0) * 1000);
      if (s.kind === "video") {
        r.codec = report.get(s.codecId)?.mimeType || "";
        r.framesDecoded = s.framesDecoded || 0;
        r.frameWidth = s.frameWidth || 0;
        r.frameHeight = s.frameHeight || 0;
        r.framesPerSecond = s.framesPerSecond || 0;
      } else {
        r.audioCodec = report.get(s.codecId)?.mimeType || "";
        r.totalAudioEnergy = s.totalAudioEnergy || 0;
        r.totalSamplesReceived = s.totalSamplesReceived || 0;
        r.audioLevel = s.audioLevel || 0;
        r.audioPacketsReceived = s.packetsReceived || 0;
      }
    });
    return out;
  }
}
