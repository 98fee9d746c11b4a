// @ts-check
/**
 * The site page: HQ large on the stage, every other site in the grid, this site's own camera
 * as a preview. Renders what the BridgeClient reports; decides nothing the server decides.
 */
import { loadStrings, t, toggleLanguage, translatePage } from "./i18n.js";
import { BridgeClient } from "./bridge.js";

const siteId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const key = new URLSearchParams(location.hash.slice(1)).get("key") || "";
const statusEl = /** @type {HTMLElement} */ (document.getElementById("status"));

await loadStrings();
translatePage();
document.getElementById("lang")?.addEventListener("click", toggleLanguage);

/** @param {string} phase @param {string} text */
function showStatus(phase, text) {
  statusEl.dataset.phase = phase;
  statusEl.textContent = text;
}

/** @type {{title: string, sites: {id: string, name: string, role: string}[]}} */
const conf = await (await fetch("/api/sites")).json();
const me = conf.sites.find((s) => s.id === siteId);
const chair = conf.sites.find((s) => s.role === "chair");
document.title = `${me ? me.name : siteId} — ${conf.title}`;
/** @type {HTMLElement} */ (document.getElementById("title")).textContent = conf.title;
/** @type {HTMLElement} */ (document.getElementById("me")).textContent = me ? me.name : siteId;

/** @type {Map<string, HTMLElement>} */
const tiles = new Map();
/** Milliseconds from the signalling socket opening to the first decoded frame, per site. */
/** @type {Record<string, number>} */
const firstFrameMs = {};

/** @param {{id: string, name: string}} site @param {boolean} self */
function makeTile(site, self) {
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
  fig.append(video, placeholder, cap);
  if (self) fig.classList.add("self");
  tiles.set(site.id, fig);
  return fig;
}

const stage = /** @type {HTMLElement} */ (document.getElementById("stage"));
const grid = /** @type {HTMLElement} */ (document.getElementById("grid"));
if (chair) stage.append(makeTile(chair, chair.id === siteId));
for (const s of conf.sites) {
  if (s.id !== chair?.id) grid.append(makeTile(s, s.id === siteId));
}

if (!me) {
  showStatus("error", t("status.error", { message: t("error.site_unknown") }));
  throw new Error("unknown site");
}
if (!key) {
  showStatus("error", t("status.no_key"));
  throw new Error("no key");
}

showStatus("camera", t("status.camera"));
/** @type {MediaStream} */
let local;
try {
  local = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 30 } },
  });
} catch (e) {
  showStatus("error", t("status.camera_failed", { message: String(/** @type {any} */ (e).message || e) }));
  throw e;
}
const selfTile = tiles.get(siteId);
if (selfTile) {
  const v = /** @type {HTMLVideoElement} */ (selfTile.querySelector("video"));
  v.srcObject = new MediaStream(local.getVideoTracks());
  selfTile.dataset.video = "live";
}

const proto = location.protocol === "https:" ? "wss:" : "ws:";
const client = new BridgeClient({ wsUrl: `${proto}//${location.host}/ws`, site: siteId, key, localStream: local });
const audioBox = /** @type {HTMLElement} */ (document.getElementById("audio"));

client.on("status", (/** @type {{phase: string, detail?: any}} */ { phase, detail }) => {
  if (phase === "error") {
    const message = detail?.code ? t(`error.${detail.code}`) : detail?.message;
    showStatus("error", t("status.error", { message: message || "" }));
  } else if (phase === "warning") {
    console.warn("server:", detail);
  } else {
    showStatus(phase, t(`status.${phase}`, detail || {}));
  }
});

client.on("state", (/** @type {import("./protocol.js").SitePresence[]} */ sites) => {
  for (const s of sites) {
    const tile = tiles.get(s.id);
    if (!tile || s.id === siteId) continue;
    tile.dataset.present = String(s.present);
    const ph = tile.querySelector(".placeholder");
    if (ph) ph.textContent = s.present ? t("tile.waiting") : t("tile.absent");
    if (!s.present) tile.dataset.video = "none";
  }
});

client.on("track", (/** @type {{site: string, kind: string, track: MediaStreamTrack}} */ { site, kind, track }) => {
  if (kind === "audio") {
    let el = /** @type {HTMLAudioElement|null} */ (audioBox.querySelector(`audio[data-site="${site}"]`));
    if (!el) {
      el = document.createElement("audio");
      el.dataset.site = site;
      el.autoplay = true;
      audioBox.append(el);
    }
    el.srcObject = new MediaStream([track]);
    el.play().catch((e) => console.warn("audio autoplay", site, e));
    return;
  }
  const tile = tiles.get(site);
  if (!tile) return;
  const video = /** @type {HTMLVideoElement} */ (tile.querySelector("video"));
  video.srcObject = new MediaStream([track]);
  const start = client.connectedAt;
  const onFrame = () => {
    tile.dataset.video = "live";
    if (!(site in firstFrameMs)) firstFrameMs[site] = Math.round(performance.now() - start);
  };
  if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(onFrame);
  else video.addEventListener("loadeddata", onFrame, { once: true });
});

// "Flowing" once any remote site's video decodes; checked from the browser's own statistics.
setInterval(async () => {
  if (client.phase !== "connected") return;
  const stats = await client.receiveStats();
  if (Object.values(stats).some((s) => s.framesDecoded > 0)) showStatus("flowing", t("status.flowing"));
}, 1000);

document.getElementById("leave")?.addEventListener("click", () => {
  client.stop();
  local.getTracks().forEach((tr) => tr.stop());
  showStatus("left", t("site.left"));
});

// A read-only handle for operators' consoles and end-to-end tests.
Object.assign(window, { diemcau: { client, firstFrameMs, stats: () => client.receiveStats() } });
client.start();
