// @ts-check
/**
 * Điểm Cầu signalling protocol, as docs/protocol.md defines it. No DOM here: this module only
 * speaks JSON over a WebSocket. Every server message is dispatched to `onMessage` in arrival
 * order; the caller decides what it means for the page.
 */

/** @typedef {{candidate: string, sdpMid?: string|null, sdpMLineIndex?: number|null, usernameFragment?: string|null}} IceCandidate */
/** @typedef {{id: string, name: string, role: "chair"|"site", present: boolean, since_ms?: number, audio_muted: boolean, video_muted: boolean, hard_muted: boolean, reconnecting?: boolean, held_until_ms?: number, waiting?: boolean, help?: {since_ms: number, text?: string}}} SitePresence */
/** @typedef {{holders: {site: string, request: number, since_ms: number}[], queue: {position: number, request: number, site: string, topic?: string, since_ms: number}[]}} FloorView */
/** @typedef {{title: string, kind: "report"|"speech"|"directive", site?: string, planned_minutes: number}} AgendaItem */
/** @typedef {{items: AgendaItem[], current?: {index: number, started_ms: number, planned_ms: number, speaker_absent?: boolean}}} AgendaView */
/** @typedef {{id: number, question: string, options: string[], open: boolean, opened_ms: number, closed_ms?: number, tallies: {site: string, counts: number[]}[], totals: number[]}} VoteView */
/** @typedef {{id: number, from: "chair"|"technician", to?: string, text: string, sent_ms: number, acked: string[]}} NoticeView */
/** @typedef {{video: (string|null)[], audio: (string|null)[], content: string|null, page: number, pages: number, paused?: string[]}} ViewMessage */
/**
 * @typedef {{type: "joined", session: string, site: {id: string, name: string, role: string}, conference: {title: string}, ice_servers: RTCIceServer[], resume: string, resumed: boolean}
 *  | {type: "state", sites: SitePresence[], floor: FloorView, layout: "stage"|"grid", locked: boolean, agenda: AgendaView, server_now_ms: number, sharing?: string, meeting?: {id: number, started_ms: number}, recording?: {state: "recording"|"failed", started_ms: number, error?: string}, vote?: VoteView, notices?: NoticeView[]}
 *  | ({type: "view"} & ViewMessage)
 *  | {type: "floor", event: string, request: number, site: string}
 *  | {type: "speaking", active: string|null, levels: {site: string, level: number}[]}
 *  | {type: "offer", sdp: string} | {type: "answer", sdp: string}
 *  | {type: "candidate", candidate: IceCandidate}
 *  | {type: "media", state: "connecting"|"connected"|"disconnected"|"failed"|"closed"}
 *  | {type: "replaced", message: string}
 *  | {type: "dropped", message: string}
 *  | {type: "restarting", message: string}
 *  | {type: "restart_ice"}
 *  | {type: "revoked", message: string}
 *  | {type: "error", code: string, message: string, request?: string}
 *  | {type: "pong"}} ServerMessage
 */

/** Error codes after which retrying the same join cannot help. */
export const FATAL_JOIN_CODES = new Set(["bad_key", "site_unknown"]);

export class Signalling {
  /**
   * @param {string} url wss:// address of /ws
   * @param {{onMessage: (m: ServerMessage) => void, onClose: (code: number, reason: string) => void}} handlers
   */
  constructor(url, handlers) {
    this.handlers = handlers;
    this.ws = new WebSocket(url);
    /** @type {Promise<void>} */
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener("error", () => reject(new Error("websocket error")), { once: true });
    });
    this.ws.addEventListener("message", (ev) => {
      /** @type {ServerMessage} */
      let msg;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return; // the server only sends JSON; ignore anything else
      }
      this.handlers.onMessage(msg);
    });
    this.ws.addEventListener("close", (ev) => this.handlers.onClose(ev.code, ev.reason));
  }

  /** @param {object} msg */
  send(msg) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }
  /** @param {string} site @param {string} ticket from POST /api/session @param {string} [resume] */
  join(site, ticket, resume) { this.send(resume ? { type: "join", site, ticket, resume } : { type: "join", site, ticket }); }
  /** @param {string} sdp */
  offer(sdp) { this.send({ type: "offer", sdp }); }
  /** @param {string} sdp */
  answer(sdp) { this.send({ type: "answer", sdp }); }
  /** @param {IceCandidate} candidate */
  candidate(candidate) { this.send({ type: "candidate", candidate }); }
  leave() { this.send({ type: "leave" }); }
  ping() { this.send({ type: "ping" }); }
  close() { try { this.ws.close(1000, "bye"); } catch { /* already closed */ } }
}
