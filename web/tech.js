// @ts-check
/**
 * The technicians' page: one row per site with its link numbers, a status colour, and
 * sparklines of the last five minutes (loss, RTT, bitrate, audio level); active alarms; the
 * readiness check; and per-site actions. It polls GET /api/tech once a second. A technician
 * signs in with a name and password (`POST /api/login`); the printed link carries them in the
 * address's fragment, which never reaches the server and is removed once used.
 */
import { loadStrings, t, toggleLanguage, translatePage } from "./i18n.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const fragment = new URLSearchParams(location.hash.slice(1));
if (location.hash) history.replaceState(null, "", location.pathname + location.search);
await loadStrings();
translatePage();
$("lang").addEventListener("click", toggleLanguage);
/** @type {Record<string, string>} */
const headers = { authorization: "", "content-type": "application/json" };

/** @param {string} user @param {string} password */
async function signIn(user, password) {
  const r = await fetch("/api/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, password }) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(body.message || r.statusText), { code: body.code });
  headers.authorization = `Bearer ${body.token}`;
  sessionStorage.setItem("diemcau-tech-token", body.token);
  $("login").hidden = true;
}

/** @param {string} phase @param {string} text */
function showStatus(phase, text) {
  $("status").dataset.phase = phase;
  $("status").textContent = text;
}

const fmtRate = (/** @type {number} */ bps) => (bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`);
const fmt = (/** @type {number|null|undefined} */ v, /** @type {number} */ d = 0) => (v === null || v === undefined ? "–" : v.toFixed(d));

/**
 * Draws one sparkline on a small canvas.
 * @param {HTMLCanvasElement} canvas @param {number[]} values @param {string} colour @param {number} [max]
 */
function spark(canvas, values, colour, max) {
  const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  if (!values.length) return;
  const top = max ?? Math.max(1e-9, ...values);
  g.strokeStyle = colour;
  g.lineWidth = 1.5;
  g.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, 299)) * w + (w - (values.length / 300) * w);
    const y = h - 1 - (Math.min(v, top) / top) * (h - 2);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}

/** @type {Map<string, HTMLTableRowElement>} */
const rows = new Map();

/** @param {any} s */
function row(s) {
  let tr = rows.get(s.id);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.site = s.id;
    tr.innerHTML = `<td class="name"></td><td class="state"></td><td class="in"></td><td class="out"></td><td class="loss"></td>
      <td class="jitter"></td><td class="rtt"></td><td class="video"></td><td class="audio"></td>
      <td class="spark"></td><td class="actions"></td>`;
    const sparkCell = /** @type {HTMLElement} */ (tr.querySelector(".spark"));
    for (const [k, label] of [["loss", t("tech.loss")], ["rtt", t("tech.rtt")], ["bitrate", t("tech.in")], ["level", t("tech.audio")]]) {
      const c = document.createElement("canvas");
      c.width = 110;
      c.height = 22;
      c.dataset.series = k;
      c.title = label;
      sparkCell.append(c);
    }
    const actions = /** @type {HTMLElement} */ (tr.querySelector(".actions"));
    for (const action of ["keyframe", "restart_ice", "drop"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = t(`tech.action.${action}`);
      b.dataset.action = action;
      b.addEventListener("click", () => act(s.id, action));
      actions.append(b);
    }
    /** @type {HTMLElement} */ ($("sites").querySelector("tbody")).append(tr);
    rows.set(s.id, tr);
  }
  return tr;
}

/** @param {string} site @param {string} action */
async function act(site, action) {
  const r = await fetch("/api/tech/action", { method: "POST", headers, body: JSON.stringify({ site, action }) });
  const body = await r.json().catch(() => ({}));
  showStatus(r.ok ? "connected" : "error", r.ok ? t("tech.done", { action: t(`tech.action.${action}`), site }) : body.message || r.statusText);
}

/** The last view the page rendered, for tests and consoles. */
/** @type {any} */
let lastView = null;

async function refresh() {
  if (!headers.authorization) return;
  const r = await fetch("/api/tech", { headers });
  if (r.status === 401 || r.status === 403) {
    headers.authorization = "";
    $("login").hidden = false;
    showStatus("error", t("tech.unauthorised"));
    return;
  }
  const v = await r.json();
  lastView = v;
  renderEvents(v.events || []);
  showStatus("connected", t("tech.updated", { time: new Date().toLocaleTimeString() }));
  $("overall").textContent = v.status === "ok" ? t("tech.ok") : t("tech.degraded", { n: v.alarms.length });
  $("overall").dataset.status = v.status;
  for (const s of v.sites) {
    const tr = row(s);
    tr.dataset.status = s.status;
    const cell = (/** @type {string} */ c, /** @type {string} */ text) => { /** @type {HTMLElement} */ (tr.querySelector(`.${c}`)).textContent = text; };
    cell("name", s.name);
    tr.dataset.path = s.path;
    cell("state", t(`tech.status.${s.status}`) + (s.path && s.present ? ` · ${t(`tech.path.${s.path}`)}` : "") + (s.candidate ? ` (${s.candidate})` : "") +
      (s.last_packet_age_ms !== null && s.present ? ` · ${fmt(s.last_packet_age_ms / 1000, 1)} s` : ""));
    cell("in", s.present ? `${fmtRate(s.audio_in.bitrate_bps + s.video_in.bitrate_bps)} · ${fmt(s.audio_in.packets_per_second + s.video_in.packets_per_second)} p/s` : "–");
    cell("out", s.present ? fmtRate(s.bitrate_out_bps) : "–");
    cell("loss", s.present ? `${fmt(Math.max(s.audio_in.loss_percent, s.video_in.loss_percent), 1)} %` : "–");
    cell("jitter", s.present ? `${fmt(Math.max(s.audio_in.jitter_ms, s.video_in.jitter_ms), 1)} ms` : "–");
    cell("rtt", s.rtt_ms !== null ? `${fmt(s.rtt_ms)} ms` : "–");
    cell("video", s.present ? `${fmt(s.video_in.frames_per_second, 1)} fps${s.video_in.width ? ` · ${s.video_in.width}×${s.video_in.height}` : ""}` : "–");
    cell("audio", s.present ? fmt(s.audio_level, 2) : "–");
    const hist = s.history;
    for (const c of tr.querySelectorAll("canvas")) {
      const canvas = /** @type {HTMLCanvasElement} */ (c);
      const series = canvas.dataset.series;
      if (series === "loss") spark(canvas, hist.map((/** @type {any} */ x) => x.loss_percent), "#ff8080", 20);
      if (series === "rtt") spark(canvas, hist.map((/** @type {any} */ x) => x.rtt_ms || 0), "#d9a21b");
      if (series === "bitrate") spark(canvas, hist.map((/** @type {any} */ x) => x.bitrate_in_bps), "#5ab0ff");
      if (series === "level") spark(canvas, hist.map((/** @type {any} */ x) => x.level), "#2e9d5b", 1);
    }
  }
  $("alarms").replaceChildren(...(v.alarms.length ? v.alarms.map((/** @type {any} */ a) => {
    const li = document.createElement("li");
    li.dataset.alarm = a.alarm;
    li.textContent = `${new Date(a.since_ms).toLocaleTimeString()} — ${a.site === "@bridge" ? t("alarm.bridge") : v.sites.find((/** @type {any} */ s) => s.id === a.site)?.name || a.site}: ${t(`alarm.${a.alarm}`)} (${a.detail})`;
    return li;
  }) : [Object.assign(document.createElement("li"), { className: "empty", textContent: t("tech.no_alarms") })]));
}

/** @param {any[]} events */
function renderEvents(events) {
  $("events").replaceChildren(...events.slice().reverse().map((e) => {
    const li = document.createElement("li");
    li.dataset.kind = e.kind;
    li.textContent = `${new Date(e.at_ms).toLocaleTimeString()} ${e.site_id || ""} ${e.kind}${e.detail && e.kind !== "join" && e.kind !== "reconnect" && e.kind !== "connection_lost" ? ` — ${e.detail}` : ""}`;
    return li;
  }));
}

$("readiness").addEventListener("click", async () => {
  $("report-box").hidden = false;
  $("report").textContent = t("tech.checking");
  const r = await fetch("/api/tech/readiness", { method: "POST", headers });
  const v = await r.json();
  const list = document.createElement("ul");
  for (const s of v.sites) {
    const li = document.createElement("li");
    li.dataset.site = s.site;
    li.dataset.pass = String(s.pass);
    const failed = s.checks.filter((/** @type {any} */ c) => !c.pass).map((/** @type {any} */ c) => `${t(`check.${c.name}`)}: ${c.detail}`);
    li.textContent = `${s.pass ? "✔" : "✘"} ${s.name}${failed.length ? ` — ${failed.join("; ")}` : ""}`;
    list.append(li);
  }
  $("report").replaceChildren(list);
});

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await signIn(/** @type {HTMLInputElement} */ ($("user")).value.trim(), /** @type {HTMLInputElement} */ ($("password")).value);
    await refresh();
  } catch (e) {
    showStatus("error", t(`error.${/** @type {any} */ (e).code}`) || String(e));
  }
});
const saved = sessionStorage.getItem("diemcau-tech-token");
if (fragment.get("user") && fragment.get("password")) {
  await signIn(/** @type {string} */ (fragment.get("user")), /** @type {string} */ (fragment.get("password"))).catch(() => showStatus("error", t("tech.unauthorised")));
} else if (saved) {
  headers.authorization = `Bearer ${saved}`;
  $("login").hidden = true;
} else {
  showStatus("error", t("tech.unauthorised"));
}
await refresh().catch(() => showStatus("error", t("tech.unreachable")));
setInterval(() => refresh().catch(() => showStatus("error", t("tech.unreachable"))), 1000);
Object.assign(window, { diemcauTech: { view: () => lastView } });
