// @ts-check
/**
 * The site page (and, for HQ, the chair page): tiles for every site, the floor and programme
 * banner, this site's own controls and, for the chair, the controls that run the meeting.
 * It renders the state the server sends and asks the server for changes; it decides nothing
 * itself (the server refuses what a site may not do).
 */
import { loadStrings, t, toggleLanguage, translatePage } from "./i18n.js";
import { BridgeClient } from "./bridge.js";
import * as devices from "./devices.js";
import { votePanel } from "./votes.js";
import { chairNotices, helpButton, noticeBoard } from "./messages.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const key = new URLSearchParams(location.hash.slice(1)).get("key") || "";
/** Kiosk mode (`?kiosk=1`): a room PC nobody touches — no dialogs, no leave button,
 * full screen and screen kept awake; the status line says what the page is doing. */
const kiosk = new URLSearchParams(location.search).get("kiosk") === "1";
if (kiosk) {
  document.body.dataset.kiosk = "1";
  const fullscreen = () => document.documentElement.requestFullscreen?.().catch(() => {});
  fullscreen();
  addEventListener("pointerdown", fullscreen, { once: true });
  // Browsers release a wake lock whenever the page is hidden; ask again when it shows.
  const keepAwake = () => /** @type {any} */ (navigator).wakeLock?.request("screen").catch(() => {});
  keepAwake();
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") keepAwake(); });
}
const statusEl = $("status");

await loadStrings();
translatePage();
$("lang").addEventListener("click", () => toggleLanguage(() => { render(); applyView(); showPhase(lastStatus); }));
// The key lives in the fragment: pasting the right link over this page changes only the
// fragment, which does not reload by itself.
addEventListener("hashchange", () => location.reload());

/** @param {string} phase @param {string} text */
function showStatus(phase, text) {
  statusEl.dataset.phase = phase;
  statusEl.textContent = text;
}

/** @type {{title: string, sites: {id: string, name: string, role: string}[]}} */
const conf = await (await fetch("/api/sites")).json();
const chair = conf.sites.find((s) => s.role === "chair");
const parts = location.pathname.split("/").filter(Boolean);
const siteId = parts[0] === "chair" ? chair?.id || "" : decodeURIComponent(parts[1] || "");
const me = conf.sites.find((s) => s.id === siteId);
const isChair = me?.role === "chair";
const nameOf = (/** @type {string} */ id) => conf.sites.find((s) => s.id === id)?.name || id;
document.title = `${me ? me.name : siteId} — ${conf.title}`;
$("title").textContent = conf.title;
$("me").textContent = me ? me.name : siteId;
document.body.dataset.role = isChair ? "chair" : "site";
document.querySelectorAll("[data-role]").forEach((el) => {
  /** @type {HTMLElement} */ (el).hidden = /** @type {HTMLElement} */ (el).dataset.role !== document.body.dataset.role;
});
// Drawn: the boot watchdog (boot.js) need not reload the page.
/** @type {any} */ (window).diemcauBooted?.();

/** @type {Map<string, HTMLElement>} */
const tiles = new Map();
/** Milliseconds from the signalling socket opening to the first decoded frame, per site. */
/** @type {Record<string, number>} */
const firstFrameMs = {};

/** @param {{id: string, name: string}} site */
function makeTile(site) {
  const self = site.id === siteId;
  const fig = document.createElement("figure");
  fig.className = "tile";
  fig.dataset.site = site.id;
  fig.dataset.present = self ? "true" : "false";
  fig.dataset.video = "none";
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // audio plays through a separate <audio> element
  const placeholder = document.createElement("div");
  placeholder.className = "placeholder";
  placeholder.textContent = self ? "" : t("tile.absent");
  const cap = document.createElement("figcaption");
  cap.textContent = self ? `${site.name} · ${t("tile.self")}` : site.name;
  const badges = document.createElement("span");
  badges.className = "badges";
  cap.append(badges);
  fig.append(video, placeholder, cap);
  if (self) fig.classList.add("self");
  tiles.set(site.id, fig);
  return fig;
}
for (const s of conf.sites) makeTile(s);

if (!me) {
  showStatus("error", t("status.error", { message: t("error.site_unknown") }));
  throw new Error("unknown site");
}
if (!key) {
  // Opened from the site list or a link without its key: say what is needed and take the
  // link (or the key alone) here, rather than a half-drawn page.
  showStatus("error", t("status.no_key"));
  const form = document.createElement("form");
  form.className = "keyform";
  const input = Object.assign(document.createElement("input"), { type: "text", id: "paste-key", placeholder: t("key.paste") });
  const go = Object.assign(document.createElement("button"), { type: "submit", textContent: t("key.open") });
  form.append(input, go);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    const fromLink = text.includes("#") ? new URLSearchParams(text.slice(text.indexOf("#") + 1)).get("key") : null;
    const k = fromLink || text;
    if (k) location.hash = `key=${encodeURIComponent(k)}`;
  });
  statusEl.after(form);
  document.body.dataset.nokey = "1";
  await new Promise(() => {}); // the page waits here until the hash changes (which reloads it)
}

showStatus("camera", t("status.camera"));
/** @type {MediaStream} */
let local;
try {
  local = await navigator.mediaDevices.getUserMedia(devices.constraints(devices.remembered(siteId)));
} catch (e) {
  showStatus("error", t("status.camera_failed", { message: String(/** @type {any} */ (e).message || e) }));
  throw e;
}
// The room's own level on the mic button (from a copy of the microphone that is never sent,
// so it shows even while muted) and a hint when the room talks into a muted microphone.
const meterCtx = new AudioContext();
const analyser = meterCtx.createAnalyser();
analyser.fftSize = 1024;
/** @type {MediaStreamAudioSourceNode|null} */
let meterSource = null;
/** @param {MediaStreamTrack|undefined} track the microphone to show (a copy of it is metered) */
function meterOn(track) {
  meterSource?.disconnect();
  meterSource = track ? meterCtx.createMediaStreamSource(new MediaStream([track.clone()])) : null;
  meterSource?.connect(analyser);
}
meterOn(local.getAudioTracks()[0]);
{
  const ctx = meterCtx;
  const samples = new Float32Array(analyser.fftSize);
  let talkingSince = 0;
  addEventListener("pointerdown", () => { if (ctx.state === "suspended") ctx.resume().catch(() => {}); });
  setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const x of samples) sum += x * x;
    const level = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    /** @type {HTMLMeterElement} */ ($("mic-level")).value = level;
    /** @type {HTMLMeterElement} */ ($("preview-level")).value = level;
    const mic = $("mic");
    const muted = mic.dataset.on === "false";
    talkingSince = muted && level > 0.08 ? talkingSince || Date.now() : 0;
    const hint = $("mic-hint");
    hint.hidden = !(muted && talkingSince && Date.now() - talkingSince > 1200);
    hint.textContent = mic.dataset.hard === "true" ? t("mic.hard_hint") : t("mic.muted_hint");
  }, 150);
}
const selfTile = /** @type {HTMLElement} */ (tiles.get(siteId));
/** @type {HTMLVideoElement} */ (selfTile.querySelector("video")).srcObject = new MediaStream(local.getVideoTracks());
selfTile.dataset.video = "live";

const proto = location.protocol === "https:" ? "wss:" : "ws:";
/** `?relay=1`: media only through the configured TURN server. */
const relayOnly = new URLSearchParams(location.search).get("relay") === "1";
/** `?codec=h264`: the camera offers H.264 first (a room PC that decodes it in hardware). */
const preferCodec = new URLSearchParams(location.search).get("codec") || undefined;
const client = new BridgeClient({ wsUrl: `${proto}//${location.host}/ws`, site: siteId, key, localStream: local, relayOnly, preferCodec });
const audioBox = $("audio");
/** What the vote, notice and help panels need of this page. */
const tools = { act: (/** @type {any} */ m) => client.act(m), siteId, isChair, nameOf, wards: conf.sites.filter((x) => x.role !== "chair") };
const drawVote = votePanel(tools, isChair ? $("chair-vote") : $("vote-panel"));
const drawMessages = noticeBoard(tools, $("site-notices"));
const drawChairNotices = isChair ? chairNotices(tools, $("chair-notices")) : () => {};
const drawHelp = helpButton(tools, /** @type {HTMLButtonElement} */ ($("help")));

/** @type {import("./protocol.js").ServerMessage & {type: "state"} | null} */
let state = null;
let clockOffset = 0;

/** @type {{phase: string, detail?: any}} the page's last status, redrawn in another language */
let lastStatus = { phase: "camera" };
/** @param {{phase: string, detail?: any}} st */
function showPhase(st) {
  const { phase, detail } = st;
  if (phase === "warning") return console.warn("client:", detail);
  lastStatus = st;
  if (phase === "error") {
    const message = detail?.code ? t(`error.${detail.code}`) : detail?.message;
    showStatus("error", t("status.error", { message: message || "" }));
  } else {
    showStatus(phase, t(`status.${phase}`, detail || {}));
  }
  // A page that can no longer act (replaced by another tab, left, refused for good) must not
  // look live: its controls are disabled and an overlay says why and what to do.
  const dead = phase === "replaced" || phase === "error" || phase === "left";
  document.body.dataset.phase = phase;
  document.querySelectorAll("#controls button, #chair button, #chair input, #chair select").forEach((b) => { /** @type {HTMLButtonElement} */ (b).disabled = dead; });
  const overlay = $("overlay");
  const lost = phase === "reconnecting" || phase === "media_failed" || phase === "locked_waiting";
  overlay.hidden = !(dead || lost);
  overlay.dataset.kind = dead ? "dead" : "lost";
  $("overlay-text").textContent = statusEl.textContent || "";
  $("overlay-action").hidden = !dead;
  $("overlay-action").textContent = phase === "replaced" ? t("overlay.take_back") : t("overlay.rejoin");
}
client.on("status", showPhase);

/** @type {{text: string, until: number, important: boolean}[]} */
let notices = [];
/**
 * Shows a notice for 8 s (`important`: 20 s, for what concerns this site itself); several
 * at once stay side by side, so one event never hides the one just before it.
 * @param {string} text @param {boolean} [important]
 */
function notice(text, important = false) {
  notices = notices.filter((n) => n.text !== text).concat([{ text, until: Date.now() + (important ? 20000 : 8000), important }]).slice(-3);
  drawNotices();
}
function drawNotices() {
  const now = Date.now();
  notices = notices.filter((n) => n.until > now);
  const box = $("notice");
  box.replaceChildren(...notices.map((n) => Object.assign(document.createElement("span"), { textContent: n.text, className: n.important ? "important" : "" })));
}
setInterval(drawNotices, 1000);

client.on("refused", (/** @type {{code: string, message: string}} */ m) => {
  const translated = t(`error.${m.code}`);
  notice(t("refused", { message: translated.startsWith("error.") ? m.message : translated }));
});
/** The site whose floor was just revoked (and when), to say who it went to when the grant follows. */
let revokedJustNow = "";
let revokedAt = 0;
client.on("floor", (/** @type {{event: string, site: string}} */ m) => {
  const mine = m.site === siteId;
  if (m.event === "revoked") [revokedJustNow, revokedAt] = [m.site, Date.now()];
  if (m.event === "granted" && revokedJustNow && revokedJustNow !== m.site && Date.now() - revokedAt < 1500) {
    // The chair handed the floor over: the speaker who lost it is told to whom, at length.
    notice(revokedJustNow === siteId ? t("floor.handed_to_you_lost", { site: nameOf(m.site) }) : t("floor.handed", { from: nameOf(revokedJustNow), to: nameOf(m.site) }), revokedJustNow === siteId || mine);
    revokedJustNow = "";
    return;
  }
  if (m.event !== "requested" || isChair) notice(mine ? t(`floor.mine.${m.event}`) : t(`floor.event.${m.event}`, { site: nameOf(m.site) }), mine);
});
client.on("speaking", (/** @type {{active: string|null, levels: {site: string, level: number}[]}} */ m) => {
  tiles.forEach((tile, id) => { tile.dataset.speaking = String(id === m.active); });
  document.body.dataset.speaking = m.active || "";
  if (!isChair) return;
  document.querySelectorAll("#sites tr[data-site]").forEach((tr) => {
    const row = /** @type {HTMLElement} */ (tr);
    const level = m.levels.find((l) => l.site === row.dataset.site)?.level || 0;
    const meter = /** @type {HTMLMeterElement|null} */ (row.querySelector("meter"));
    if (meter) meter.value = level;
  });
});

client.on("state", (/** @type {any} */ s) => {
  state = s;
  clockOffset = s.server_now_ms - Date.now();
  render();
});

/** The server's output slots (`a0…`, `v0…`, `c0`) and their tracks; the view says whose they are. */
/** @type {Map<string, MediaStream>} */
const slotStreams = new Map();
/** The stream each tile shows, so a tile is only re-attached when its slot changes. */
/** @type {Map<string, MediaStream>} */
const tileStream = new Map();

client.on("track", (/** @type {{slot: string, kind: string, track: MediaStreamTrack}} */ { slot, track }) => {
  slotStreams.set(slot, new MediaStream([track]));
  applyView();
});
client.on("view", () => applyView());

/** Puts each slot's media where the view says: a site's tile, its audio element, the content. */
function applyView() {
  const view = client.view;
  const shown = new Set();
  view.video.forEach((site, i) => {
    const stream = slotStreams.get(`v${i}`);
    if (!site || !stream) return;
    shown.add(site);
    const tile = tiles.get(site);
    if (!tile || tileStream.get(site) === stream) return;
    tileStream.set(site, stream);
    const video = /** @type {HTMLVideoElement} */ (tile.querySelector("video"));
    video.srcObject = stream;
    video.play().catch(() => {});
    const start = client.connectedAt;
    const onFrame = () => {
      if (tileStream.get(site) !== stream) return;
      tile.dataset.video = "live";
      if (!(site in firstFrameMs)) firstFrameMs[site] = Math.round(performance.now() - start);
    };
    // Browsers without requestVideoFrameCallback (Firefox before 132) report the first frame by loadeddata.
    const frames = /** @type {Partial<HTMLVideoElement>} */ (video).requestVideoFrameCallback;
    if (frames) frames.call(video, onFrame);
    else video.addEventListener("loadeddata", onFrame, { once: true });
  });
  // Present sites not shown on this page of thumbnails.
  tiles.forEach((tile, site) => {
    if (site === siteId || shown.has(site) || !tileStream.has(site)) return;
    tileStream.delete(site);
    /** @type {HTMLVideoElement} */ (tile.querySelector("video")).srcObject = null;
    tile.dataset.video = "none";
  });
  tiles.forEach((tile, site) => { tile.dataset.offpage = String(site !== siteId && !shown.has(site) && view.pages > 1); });
  // Cameras this site's line cannot take now: the tile says so (its audio still comes).
  const paused = new Set(view.paused || []);
  tiles.forEach((tile, site) => {
    const was = tile.dataset.paused === "true";
    tile.dataset.paused = String(paused.has(site));
    const ph = tile.querySelector(".placeholder");
    if (ph && paused.has(site)) ph.textContent = t("tile.paused_line");
    else if (ph && was && state) render();
  });
  view.audio.forEach((site, i) => {
    const stream = slotStreams.get(`a${i}`);
    if (!stream) return;
    let el = /** @type {HTMLAudioElement|null} */ (audioBox.querySelector(`audio[data-slot="a${i}"]`));
    if (!el) {
      el = document.createElement("audio");
      el.dataset.slot = `a${i}`;
      el.autoplay = true;
      useSpeaker(el);
      audioBox.append(el);
    }
    el.dataset.site = site || "";
    if (el.srcObject !== stream) {
      el.srcObject = stream;
      el.play().catch((e) => console.warn("audio autoplay", i, e));
    }
  });
  const content = slotStreams.get("c0");
  const v = /** @type {HTMLVideoElement} */ ($("content").querySelector("video"));
  if (content && view.content && view.content !== siteId && v.srcObject !== content) {
    v.srcObject = content;
    v.play().catch(() => {});
  }
  const pager = $("pager");
  pager.hidden = view.pages <= 1;
  $("page").textContent = t("view.page", { page: view.page + 1, pages: view.pages });
}
$("prev-page").addEventListener("click", () => client.showPage(Math.max(0, client.view.page - 1)));
$("next-page").addEventListener("click", () => client.showPage(Math.min(client.view.pages - 1, client.view.page + 1)));

/** @param {number} ms */
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}
const serverNow = () => Date.now() + clockOffset;

/** @param {string} label @param {() => void} onClick @param {string} [cls] */
function button(label, onClick, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

/** Places tiles by the chair's layout: stage = HQ and the floor holder large. */
function placeTiles() {
  if (!state) return;
  const holder = state.floor.holders[0]?.site;
  // The stage shows HQ and the floor holder large; on the chair's own page HQ is itself,
  // a thumbnail like any self view, and the stage is the floor holder's alone.
  const stageIds = state.layout === "stage" ? [isChair ? null : chair?.id, holder].filter((x) => x) : [];
  document.body.dataset.layout = state.layout;
  document.body.dataset.floor = holder || "";
  const stage = $("stage");
  const grid = $("grid");
  const want = (/** @type {HTMLElement} */ parent, /** @type {string[]} */ ids) => {
    ids.forEach((id, i) => {
      const tile = /** @type {HTMLElement} */ (tiles.get(id));
      if (parent.children[i] !== tile) parent.insertBefore(tile, parent.children[i] || null);
    });
  };
  want(stage, /** @type {string[]} */ (stageIds));
  want(grid, conf.sites.map((s) => s.id).filter((id) => !stageIds.includes(id)));
  stage.dataset.count = String(stageIds.length);
  // Moving a <video> pauses it; resume whatever was playing.
  tiles.forEach((tile) => {
    const v = /** @type {HTMLVideoElement} */ (tile.querySelector("video"));
    if (v.srcObject && v.paused) v.play().catch(() => {});
  });
}

function render() {
  if (!state) return;
  const s = state;
  for (const site of s.sites) {
    const tile = tiles.get(site.id);
    if (!tile) continue;
    if (site.id !== siteId) {
      tile.dataset.present = String(site.present);
      const ph = tile.querySelector(".placeholder");
      if (ph) {
        ph.textContent = site.present
          ? (tile.dataset.offpage === "true" ? t("tile.offpage") : site.video_muted ? t("tile.camera_off") : tile.dataset.paused === "true" ? t("tile.paused_line") : t("tile.waiting"))
          : site.reconnecting ? t("tile.reconnecting", { site: site.name }) : t("tile.absent");
      }
      if (site.video_muted) tile.dataset.video = "none";
      if (!site.present) tile.dataset.video = "none";
      tile.dataset.reconnecting = String(!!site.reconnecting);
    }
    tile.dataset.muted = String(site.audio_muted || site.hard_muted);
    tile.dataset.holder = String(s.floor.holders.some((h) => h.site === site.id));
    const badges = /** @type {HTMLElement} */ (tile.querySelector(".badges"));
    badges.textContent = [
      site.hard_muted ? "🔇" : site.audio_muted ? "🔈" : "",
      site.video_muted ? "📷✕" : "",
      tile.dataset.holder === "true" ? "🎙" : "",
    ].join(" ").trim();
  }
  placeTiles();

  const mine = s.sites.find((x) => x.id === siteId);
  if (mine) client.followMutes(mine);
  drawVote(s.vote);
  drawMessages(s.notices || []);
  drawChairNotices(s.notices || []);
  drawHelp(mine);
  const mic = $("mic");
  mic.textContent = mine?.hard_muted ? t("mic.hard") : mine?.audio_muted ? t("mic.on") : t("mic.off");
  mic.dataset.on = String(!(mine?.audio_muted || mine?.hard_muted));
  mic.dataset.hard = String(!!mine?.hard_muted);
  const cam = $("cam");
  cam.textContent = mine?.video_muted ? t("cam.on") : t("cam.off");
  cam.dataset.on = String(!mine?.video_muted);
  const queued = s.floor.queue.find((q) => q.site === siteId);
  const holding = s.floor.holders.some((h) => h.site === siteId);
  $("ask").textContent = queued ? t("floor.cancel") : t("floor.ask");
  $("ask").hidden = isChair || holding;
  $("release").hidden = isChair || !holding;
  $("position").textContent = queued ? t("floor.position", { position: queued.position }) : "";
  const share = $("share");
  share.hidden = !(isChair || holding || s.sharing === siteId);
  share.textContent = s.sharing === siteId ? t("share.stop") : t("share.start");
  const content = $("content");
  content.hidden = !s.sharing;
  document.body.dataset.sharing = s.sharing || "";
  /** @type {HTMLElement} */ (content.querySelector("figcaption")).textContent = s.sharing ? t("share.caption", { site: nameOf(s.sharing) }) : "";
  if (s.sharing === siteId) {
    // Our own content: show the local track rather than waiting for a copy from the server.
    const v = /** @type {HTMLVideoElement} */ (content.querySelector("video"));
    if (sharedTrack && (/** @type {MediaStream|null} */ (v.srcObject))?.getTracks()[0] !== sharedTrack) v.srcObject = new MediaStream([sharedTrack]);
  }
  if (isChair) {
    renderChair();
    renderAlarms();
  }
  // Every site sees that the meeting is being recorded (and a failure, so nobody relies on it).
  const rec = $("rec");
  rec.hidden = !s.recording;
  rec.dataset.state = s.recording?.state || "";
  rec.textContent = s.recording?.state === "recording" ? t("rec.on", { time: clock(serverNow() - s.recording.started_ms) })
    : s.recording ? t("rec.failed") : "";
  rec.title = s.recording?.error || "";
  // Wards enter who attends once the chair has started the recorded conference.
  $("attendance").hidden = isChair || !s.meeting;
  $("attendance").dataset.show = String(!isChair && !!s.meeting);
  renderTimers();
}

function renderTimers() {
  if (!state) return;
  if (state.recording?.state === "recording") $("rec").textContent = t("rec.on", { time: clock(serverNow() - state.recording.started_ms) });
  const holder = state.floor.holders[0];
  $("speaker").textContent = holder
    ? t("floor.speaking", { site: nameOf(holder.site), time: clock(serverNow() - holder.since_ms) })
    : t("floor.nobody");
  const cur = state.agenda.current;
  const item = $("item");
  if (cur) {
    const it = state.agenda.items[cur.index];
    const elapsed = serverNow() - cur.started_ms;
    item.textContent = t("item.current", {
      n: cur.index + 1, total: state.agenda.items.length, title: it.title, elapsed: clock(elapsed), planned: clock(cur.planned_ms),
    }) + (elapsed > cur.planned_ms ? ` — ${t("item.overtime")}` : "")
      + (cur.speaker_absent ? ` — ${t(isChair ? "item.speaker_absent_chair" : "item.speaker_absent", { site: nameOf(it.site || "") })}` : "");
    item.dataset.absent = String(!!cur.speaker_absent);
    item.dataset.overtime = String(elapsed > cur.planned_ms);
  } else {
    item.textContent = "";
  }
  if (isChair) {
    document.querySelectorAll("#sites [data-held-until]").forEach((el) => {
      const left = Math.max(0, Math.ceil((Number(/** @type {HTMLElement} */ (el).dataset.heldUntil) - serverNow()) / 1000));
      el.textContent = t("state.reconnecting", { s: left });
    });
    document.querySelectorAll("#queue [data-since]").forEach((el) => {
      el.textContent = t("chair.waiting", { time: clock(serverNow() - Number(/** @type {HTMLElement} */ (el).dataset.since)) });
    });
  }
}

function renderChair() {
  if (!state) return;
  const s = state;
  const queue = $("queue");
  queue.replaceChildren(...(s.floor.queue.length ? s.floor.queue.map((q) => {
    const li = document.createElement("li");
    li.dataset.site = q.site;
    const waiting = document.createElement("span");
    waiting.className = "waiting";
    waiting.dataset.since = String(q.since_ms);
    li.append(`${nameOf(q.site)}${q.topic ? ` — „${q.topic}”` : ""} `, waiting, " ",
      button(t("chair.grant"), () => client.act({ type: "grant_floor", request: q.request }), "grant"),
      button(t("chair.deny"), () => client.act({ type: "deny_floor", request: q.request }), "deny"));
    return li;
  }) : [Object.assign(document.createElement("li"), { className: "empty", textContent: t("chair.queue_empty") })]));

  const table = $("sites");
  table.replaceChildren(...s.sites.filter((x) => x.role !== "chair").map((site) => {
    const tr = document.createElement("tr");
    tr.dataset.site = site.id;
    const holds = s.floor.holders.some((h) => h.site === site.id);
    tr.dataset.presence = site.present ? "present" : site.reconnecting ? "reconnecting" : site.waiting ? "waiting" : "absent";
    const name = document.createElement("td");
    const meter = document.createElement("meter");
    meter.min = 0;
    meter.max = 1;
    meter.value = 0;
    const st = document.createElement("div");
    st.className = "presence";
    name.append(Object.assign(document.createElement("strong"), { textContent: site.name }), st, meter);
    if (site.reconnecting && site.held_until_ms) {
      // Lost its connection (a crashed browser, a cut line): not absent, its seat is held.
      const held = Object.assign(document.createElement("span"), { className: "held" });
      held.dataset.heldUntil = String(site.held_until_ms);
      held.textContent = t("state.reconnecting", { s: Math.max(0, Math.ceil((site.held_until_ms - serverNow()) / 1000)) });
      st.append(held);
    } else {
      st.textContent = site.present ? t("state.present") : site.waiting ? t("state.waiting") : t("state.absent");
    }
    const flags = [];
    if (site.hard_muted) flags.push(t("state.hard_muted"));
    else if (site.audio_muted) flags.push(t("state.muted"));
    if (site.video_muted) flags.push(t("state.cam_off"));
    if (flags.length) st.append(` · ${flags.join(", ")}`);
    const actions = document.createElement("td");
    if (site.waiting) actions.append(button(t("chair.admit"), () => client.act({ type: "admit", site: site.id }), "admit"));
    actions.append(
      holds ? button(t("chair.revoke"), () => client.act({ type: "revoke_floor", site: site.id }), "revoke")
        : button(t("chair.give"), () => client.act({ type: "give_floor", site: site.id }), "give"),
      site.hard_muted ? button(t("chair.unmute"), () => client.act({ type: "mute_site", site: site.id, muted: false }), "unmute")
        : button(t("chair.mute"), () => client.act({ type: "mute_site", site: site.id, muted: true }), "mute"),
    );
    tr.append(name, actions);
    return tr;
  }));
  $("meeting").textContent = s.meeting ? t("chair.end_meeting") : t("chair.start_meeting");
  const record = $("record");
  record.textContent = s.recording?.state === "recording" ? t("chair.stop_recording")
    : s.recording ? t("chair.ack_recording") : t("chair.start_recording");
  record.dataset.state = s.recording?.state || "idle";
  const minutes = /** @type {HTMLAnchorElement} */ ($("minutes"));
  const lastId = s.meeting?.id ?? lastMeetingId;
  if (s.meeting) lastMeetingId = s.meeting.id;
  minutes.hidden = lastId === null;
  // Opened in a new tab: the session cookie set at sign-in authorises it.
  if (lastId !== null) minutes.href = `/api/conferences/${lastId}/minutes?format=html`;
  $("layout").textContent = s.layout === "stage" ? t("chair.layout_grid") : t("chair.layout_stage");
  $("lock").textContent = s.locked ? t("chair.unlock") : t("chair.lock");
  const agenda = $("agenda");
  agenda.replaceChildren(...(s.agenda.items.length ? s.agenda.items.map((it, i) => {
    const li = document.createElement("li");
    li.textContent = `${t(`kind.${it.kind}`)}: ${it.title}${it.site ? ` (${nameOf(it.site)})` : ""} — ${it.planned_minutes}′`;
    if (s.agenda.current?.index === i) li.className = "current";
    return li;
  }) : [Object.assign(document.createElement("li"), { className: "empty", textContent: t("chair.agenda_empty") })]));
}
setInterval(renderTimers, 1000);

// The chair sees the technicians' alarms in its panel, in words, as they are raised (a site
// whose browser crashed shows here within seconds); details are on /tech.
/** @type {any[]} */
let alarms = [];
function renderAlarms() {
  const list = $("chair-alarms");
  // A site whose connection dropped is known at once from the state; the technicians'
  // alarm for it follows a few seconds later.
  const lost = (state?.sites || []).filter((x) => x.reconnecting && !alarms.some((a) => a.site === x.id && a.alarm === "site_dropped"))
    .map((x) => ({ site: x.id, alarm: "site_dropped" }));
  const shown = [...lost, ...alarms];
  list.hidden = !shown.length;
  list.replaceChildren(...shown.map((a) => {
    const li = document.createElement("li");
    li.dataset.alarm = a.alarm;
    li.dataset.site = a.site;
    li.textContent = `${a.site === "@bridge" ? t("alarm.bridge") : nameOf(a.site)}: ${t(`alarm.${a.alarm}`)}`;
    return li;
  }));
  const badge = $("alarm-badge");
  badge.hidden = !shown.length;
  badge.textContent = t("alarm.badge", { n: shown.length });
}
if (isChair) {
  const poll = async () => {
    const h = await (await fetch("/api/health", { headers: { authorization: `Bearer ${client.token}` } })).json();
    if (!h.alarms) return;
    alarms = h.alarms;
    renderAlarms();
  };
  setInterval(() => poll().catch(() => {}), 1500);
}

$("mic").addEventListener("click", () => {
  const mine = state?.sites.find((x) => x.id === siteId);
  if (mine?.hard_muted) return notice(t("mic.hard_hint"), true);
  client.mute({ audio: !mine?.audio_muted });
});
$("cam").addEventListener("click", () => {
  const mine = state?.sites.find((x) => x.id === siteId);
  client.mute({ video: !mine?.video_muted });
});
$("ask").addEventListener("click", () => {
  if (state?.floor.queue.some((q) => q.site === siteId)) return client.act({ type: "cancel_floor" });
  const topic = kiosk ? "" : (prompt(t("floor.topic_prompt")) || "").trim();
  client.act(topic ? { type: "request_floor", topic } : { type: "request_floor" });
});
$("release").addEventListener("click", () => client.act({ type: "release_floor" }));

/** @type {MediaStreamTrack|null} */
let sharedTrack = null;
/** Shares a track (a screen from the share button, or any video track from a console). */
async function shareTrack(/** @type {MediaStreamTrack} */ track) {
  try {
    await client.share(track);
    sharedTrack = track;
    track.addEventListener("ended", () => stopSharing());
    render();
  } catch (e) {
    track.stop();
    const code = /** @type {any} */ (e).code;
    notice(t("refused", { message: code ? t(`error.${code}`) : String(/** @type {any} */ (e).message) }));
  }
}
async function stopSharing() {
  sharedTrack?.stop();
  sharedTrack = null;
  await client.stopShare();
}
$("share").addEventListener("click", async () => {
  if (state?.sharing === siteId) return stopSharing();
  try {
    const display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 5, max: 15 } }, audio: false });
    await shareTrack(display.getVideoTracks()[0]);
  } catch (e) {
    console.warn("share", e);
  }
});
$("mute-all").addEventListener("click", () => client.act({ type: "mute_all", muted: true }));
$("unmute-all").addEventListener("click", () => client.act({ type: "mute_all", muted: false }));
$("layout").addEventListener("click", () => client.act({ type: "set_layout", layout: state?.layout === "stage" ? "grid" : "stage" }));
$("lock").addEventListener("click", () => client.act({ type: "lock", locked: !state?.locked }));
$("next-item").addEventListener("click", () => client.act({ type: "next_item" }));
/** @type {number|null} the last recorded conference, for the minutes link */
let lastMeetingId = null;
$("meeting").addEventListener("click", () => client.act({ type: state?.meeting ? "end_conference" : "start_conference" }));
$("record").addEventListener("click", () => client.act({ type: state?.recording ? "stop_recording" : "start_recording" }));
$("attendance").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const headcount = Number(/** @type {HTMLInputElement} */ ($("headcount")).value);
  /** @type {any} */
  const msg = { type: "attendance", attendees: /** @type {HTMLInputElement} */ ($("attendees")).value.trim() };
  if (headcount > 0) msg.headcount = headcount;
  if (!msg.attendees) return notice(t("attendance.empty"), true);
  client.act(msg);
  notice(t("attendance.saved"));
});

// The programme editor: one row per item (kind, title, speaking site, minutes), checked here
// with a message on the row at fault; what was typed stays until the server has the new
// programme (then the editor closes) or the chair cancels.
/** @type {string|null} the programme sent, until the server's state shows it */
let pendingAgenda = null;
const wards = conf.sites.filter((x) => x.role !== "chair");
/** @param {{kind: string, title: string, site?: string, planned_minutes: number}} [item] */
function agendaRow(item = { kind: "speech", title: "", planned_minutes: 5 }) {
  const tr = document.createElement("tr");
  const kind = document.createElement("select");
  kind.className = "kind";
  for (const k of ["report", "speech", "directive"]) kind.append(new Option(t(`kind.${k}`), k, false, item.kind === k));
  const title = Object.assign(document.createElement("input"), { className: "title", type: "text", maxLength: 200, value: item.title });
  const site = document.createElement("select");
  site.className = "site";
  site.append(new Option("—", ""));
  for (const w of wards) site.append(new Option(w.name, w.id, false, item.site === w.id));
  const minutes = Object.assign(document.createElement("input"), { className: "minutes", type: "number", min: "1", max: "600", value: String(item.planned_minutes || "") });
  const sync = () => { site.disabled = kind.value !== "speech"; if (site.disabled) site.value = ""; };
  kind.addEventListener("change", sync);
  sync();
  const cell = (/** @type {Node[]} */ ...nodes) => { const td = document.createElement("td"); td.append(...nodes); return td; };
  const move = (/** @type {number} */ d) => {
    const sib = d < 0 ? tr.previousElementSibling : tr.nextElementSibling;
    if (sib) d < 0 ? sib.before(tr) : sib.after(tr);
    numberRows();
  };
  const err = Object.assign(document.createElement("div"), { className: "row-error" });
  tr.append(cell(Object.assign(document.createElement("span"), { className: "n" })), cell(kind), cell(title, err), cell(site), cell(minutes),
    cell(button("↑", () => move(-1), "up"), button("↓", () => move(1), "down"), button("✕", () => { tr.remove(); numberRows(); }, "remove")));
  return tr;
}
function numberRows() {
  $("agenda-rows").querySelectorAll("tr").forEach((tr, i) => { /** @type {HTMLElement} */ (tr.querySelector(".n")).textContent = String(i + 1); });
}
/** The rows as programme items, and the first problem found (row number and message). */
function readAgenda() {
  /** @type {any[]} */
  const items = [];
  /** @type {string[]} */
  const problems = [];
  $("agenda-rows").querySelectorAll("tr").forEach((tr, i) => {
    const v = (/** @type {string} */ sel) => /** @type {HTMLInputElement} */ (tr.querySelector(sel)).value.trim();
    const item = { kind: v(".kind"), title: v(".title"), planned_minutes: Number(v(".minutes")) };
    if (item.kind === "speech" && v(".site")) Object.assign(item, { site: v(".site") });
    let why = "";
    if (!item.title) why = t("agenda.no_title");
    else if (!Number.isInteger(item.planned_minutes) || item.planned_minutes < 1 || item.planned_minutes > 600) why = t("agenda.bad_minutes");
    else if (item.kind === "speech" && !("site" in item)) why = t("agenda.no_site");
    /** @type {HTMLElement} */ (tr.querySelector(".row-error")).textContent = why;
    tr.dataset.error = String(!!why);
    if (why) problems.push(t("agenda.row_problem", { n: i + 1, why }));
    items.push(item);
  });
  return { items, problems };
}
$("edit-agenda").addEventListener("click", () => {
  $("agenda-rows").replaceChildren(...(state?.agenda.items || []).map((it) => agendaRow(it)));
  numberRows();
  $("agenda-error").textContent = "";
  pendingAgenda = null;
  $("agenda-editor").hidden = false;
});
$("add-item").addEventListener("click", () => { $("agenda-rows").append(agendaRow()); numberRows(); });
$("cancel-agenda").addEventListener("click", () => { $("agenda-editor").hidden = true; pendingAgenda = null; });
$("agenda-editor").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const { items, problems } = readAgenda();
  if (problems.length) {
    $("agenda-error").textContent = t("agenda.not_saved", { problems: problems.join("; ") });
    return;
  }
  pendingAgenda = JSON.stringify(items);
  $("agenda-error").textContent = t("agenda.saving");
  client.act({ type: "set_agenda", items });
});
client.on("state", (/** @type {any} */ s) => {
  if (pendingAgenda === null) return;
  const got = JSON.stringify(s.agenda.items.map((/** @type {any} */ i) => ({ kind: i.kind, title: i.title, planned_minutes: i.planned_minutes, ...(i.site ? { site: i.site } : {}) })));
  if (got === pendingAgenda) {
    pendingAgenda = null;
    $("agenda-editor").hidden = true;
    notice(t("agenda.saved"));
  }
});
client.on("refused", (/** @type {{code: string, message: string, request?: string}} */ m) => {
  if (m.request !== "set_agenda" || $("agenda-editor").hidden) return;
  pendingAgenda = null;
  const row = Number(/item (\d+)/.exec(m.message)?.[1] || 0);
  $("agenda-error").textContent = t("agenda.refused", { message: row ? t("agenda.row_problem", { n: row, why: m.message.replace(/^.*?item \d+:\s*/, "") }) : m.message });
});

// The room's devices: camera, microphone and speaker, with a preview and the level meter,
// remembered for this site on this PC. Opened by itself the first time a site is used here
// (not in a kiosk), and from its button at any time; the switch needs no renegotiation.
/** @type {string} the speaker chosen (empty: the system's) */
let speakerId = devices.remembered(siteId).speaker || "";
/** @param {HTMLMediaElement} el */
function useSpeaker(el) {
  const media = /** @type {any} */ (el);
  if (speakerId && typeof media.setSinkId === "function" && media.sinkId !== speakerId) media.setSinkId(speakerId).catch((/** @type {any} */ e) => console.warn("speaker", e));
}
async function openDevices() {
  const found = await devices.list();
  const fill = (/** @type {string} */ id, /** @type {MediaDeviceInfo[]} */ list, /** @type {string} */ current) => {
    const sel = /** @type {HTMLSelectElement} */ ($(id));
    sel.replaceChildren(...list.map((d, i) => new Option(d.label || `${t("devices.unnamed")} ${i + 1}`, d.deviceId, false, d.deviceId === current)));
    sel.disabled = !list.length;
  };
  fill("cam-select", found.video, local.getVideoTracks()[0]?.getSettings().deviceId || "");
  fill("mic-select", found.audio, local.getAudioTracks()[0]?.getSettings().deviceId || "");
  fill("spk-select", found.speaker, speakerId);
  $("test-speaker").hidden = !found.speaker.length;
  /** @type {HTMLVideoElement} */ ($("preview")).srcObject = new MediaStream(local.getVideoTracks());
  $("devices-panel").hidden = false;
}
$("devices").addEventListener("click", () => { openDevices().catch((e) => console.warn("devices", e)); });
$("devices-close").addEventListener("click", () => { $("devices-panel").hidden = true; });
$("test-speaker").addEventListener("click", () => {
  // A short tone through the chosen speaker.
  const ctx = new AudioContext();
  const osc = ctx.createOscillator();
  const dest = ctx.createMediaStreamDestination();
  osc.frequency.value = 660;
  osc.connect(dest);
  const el = new Audio();
  el.srcObject = dest.stream;
  speakerId = /** @type {HTMLSelectElement} */ ($("spk-select")).value;
  useSpeaker(el);
  el.play().catch(() => {});
  osc.start();
  setTimeout(() => { osc.stop(); ctx.close(); }, 600);
});
$("devices-panel").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const choice = {
    video: /** @type {HTMLSelectElement} */ ($("cam-select")).value || undefined,
    audio: /** @type {HTMLSelectElement} */ ($("mic-select")).value || undefined,
    speaker: /** @type {HTMLSelectElement} */ ($("spk-select")).value || undefined,
  };
  devices.remember(siteId, choice);
  speakerId = choice.speaker || "";
  audioBox.querySelectorAll("audio").forEach((el) => useSpeaker(/** @type {HTMLAudioElement} */ (el)));
  const c = devices.constraints(choice);
  try {
    for (const kind of /** @type {const} */ (["video", "audio"])) {
      const current = local.getTracks().find((tr) => tr.kind === kind)?.getSettings().deviceId;
      if (!choice[kind] || choice[kind] === current) continue;
      const fresh = (await navigator.mediaDevices.getUserMedia({ [kind]: { ...(/** @type {any} */ (c[kind])), deviceId: { exact: choice[kind] } } })).getTracks()[0];
      await client.replaceLocalTrack(fresh);
      if (kind === "audio") meterOn(fresh);
    }
  } catch (e) {
    return notice(t("devices.failed", { message: String(/** @type {any} */ (e).message || e) }), true);
  }
  /** @type {HTMLVideoElement} */ (selfTile.querySelector("video")).srcObject = new MediaStream(local.getVideoTracks());
  $("devices-panel").hidden = true;
  notice(t("devices.applied"));
});
if (!kiosk && !devices.chosen(siteId)) openDevices().catch(() => {});

// A tile full screen (its button, or a double click).
tiles.forEach((tile) => {
  const full = () => { if (document.fullscreenElement) document.exitFullscreen().catch(() => {}); else tile.requestFullscreen?.().catch(() => {}); };
  tile.addEventListener("dblclick", full);
  const b = Object.assign(document.createElement("button"), { type: "button", className: "fullscreen", textContent: "⛶", title: t("tile.fullscreen") });
  b.addEventListener("click", full);
  tile.append(b);
});

// "Flowing" once any remote site's video decodes; checked from the browser's own statistics.
setInterval(async () => {
  if (client.phase !== "connected") return;
  const stats = await client.receiveStats();
  if (Object.values(stats).some((s) => s.framesDecoded > 0)) showStatus("flowing", t("status.flowing"));
}, 1000);

$("leave").addEventListener("click", () => { $("leave-confirm").hidden = false; });
$("leave-cancel").addEventListener("click", () => { $("leave-confirm").hidden = true; });
$("leave-yes").addEventListener("click", () => {
  $("leave-confirm").hidden = true;
  client.stop();
  local.getTracks().forEach((tr) => tr.stop());
  showPhase({ phase: "left" });
});
// From the overlay of a page that can no longer act: join again (a reload signs in anew and,
// for a replaced page, takes the site back from the other tab).
$("overlay-action").addEventListener("click", () => location.reload());

// A read-only handle for operators' consoles and end-to-end tests.
Object.assign(window, { diemcau: { client, firstFrameMs, stats: () => client.receiveStats(), state: () => state, shareTrack, stopSharing } });
// Until the first state arrives, show HQ on the stage as before.
$("stage").append(/** @type {HTMLElement} */ (tiles.get(chair?.id || "")));
conf.sites.filter((x) => x.id !== chair?.id).forEach((x) => $("grid").append(/** @type {HTMLElement} */ (tiles.get(x.id))));
client.start();
