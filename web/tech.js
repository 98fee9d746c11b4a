// @ts-check
/**
 * The technicians' page: one row per site with its link numbers, a status colour, and
 * labelled sparklines of the last five minutes (loss, RTT, bitrate, audio level); active
 * alarms; the readiness check; per-site actions; the event log. It polls GET /api/tech once
 * a second and renders what the server decided: who is connected, held or stalled, which
 * numbers are current. Words come from techtext.js (codes and numbers → Vietnamese or
 * English), times from the meeting's time zone. A technician signs in with a name and
 * password (`POST /api/login`); the printed link carries them in the address's fragment,
 * which never reaches the server and is removed once used.
 */
import { lang, loadStrings, t, toggleLanguage, translatePage } from "./i18n.js";
import { DEFAULT_TIME_ZONE, checkText, clock, eventText, numbers, rate, reasonText } from "./techtext.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const fragment = new URLSearchParams(location.hash.slice(1));
if (location.hash) history.replaceState(null, "", location.pathname + location.search);
await loadStrings();
translatePage();
// Drawn: the boot watchdog (boot.js) need not reload the page.
/** @type {any} */ (window).diemcauBooted?.();
$("lang").addEventListener("click", toggleLanguage);
/** @type {Record<string, string>} */
const headers = { authorization: "", "content-type": "application/json" };

/** How long an action's outcome stays on screen (a new action replaces it sooner). */
const FEEDBACK_MS = 15_000;

/** The names of sites, from the last view (ids are for machines). */
/** @type {Map<string, string>} */
const names = new Map();
const nameOf = (/** @type {string} */ id) => (id === "@bridge" ? t("alarm.bridge") : names.get(id) || id);
const num = numbers(lang);
const words = { t, num, nameOf };
let timeZone = DEFAULT_TIME_ZONE;
let time = clock(timeZone);

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

/** @type {ReturnType<typeof setTimeout>|undefined} */
let feedbackTimer;

/**
 * An action's outcome, kept on screen (fixed, whatever the scroll) until read: the status
 * line is rewritten every second, so it is no place for it.
 * @param {"pending"|"ok"|"error"} state @param {string} text
 */
function showFeedback(state, text) {
  const box = $("feedback");
  box.dataset.state = state;
  /** @type {HTMLElement} */ (box.querySelector(".text")).textContent = `${time(Date.now())} ${text}`;
  box.hidden = false;
  clearTimeout(feedbackTimer);
  if (state !== "pending") feedbackTimer = setTimeout(() => { box.hidden = true; }, FEEDBACK_MS);
}
/** @type {HTMLElement} */ ($("feedback").querySelector("button")).addEventListener("click", () => { $("feedback").hidden = true; });

/** The sparklines: series, label key, colour, fixed top of the scale (else the 5 minutes' highest). */
const SERIES = /** @type {const} */ ([
  { key: "loss", label: "tech.spark.loss", colour: "#ff8080", top: 20, value: (/** @type {any} */ x) => x.loss_percent, unit: (/** @type {number} */ v) => `${num(v)} %` },
  { key: "rtt", label: "tech.spark.rtt", colour: "#d9a21b", top: undefined, value: (/** @type {any} */ x) => x.rtt_ms || 0, unit: (/** @type {number} */ v) => `${num(v)} ms` },
  { key: "bitrate", label: "tech.spark.bitrate", colour: "#5ab0ff", top: undefined, value: (/** @type {any} */ x) => x.bitrate_in_bps, unit: (/** @type {number} */ v) => rate(v, num) },
  { key: "level", label: "tech.spark.level", colour: "#2e9d5b", top: 1, value: (/** @type {any} */ x) => x.level, unit: (/** @type {number} */ v) => num(v, 1) },
]);

/**
 * Draws one sparkline (oldest left, now at the right edge) on a 0…top scale; returns the top.
 * @param {HTMLCanvasElement} canvas @param {number[]} values @param {string} colour @param {number} [fixedTop]
 */
function spark(canvas, values, colour, fixedTop) {
  const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const top = fixedTop ?? niceTop(Math.max(0, ...values));
  g.strokeStyle = "#2a3a4a";
  g.beginPath();
  g.moveTo(0, h - 0.5);
  g.lineTo(w, h - 0.5);
  g.stroke();
  if (!values.length || top <= 0) return top;
  g.strokeStyle = colour;
  g.lineWidth = 1.5;
  g.beginPath();
  values.forEach((v, i) => {
    const x = (i / 299) * w + (w - (values.length / 300) * w);
    const y = h - 1 - (Math.min(v, top) / top) * (h - 2);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  return top;
}

/** A round scale top at or above `x`: 1, 2, 5 × 10ⁿ. @param {number} x */
function niceTop(x) {
  if (x <= 0) return 0;
  const p = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= x) || 10 * p;
}

/**
 * One received camera in words: "thấp", or "thấp, ¼ khung hình" when the site's line gets only
 * some of its frames.
 * @param {{layer: string, frames?: string}} c
 */
function cameraText(c) {
  const layer = t(`tech.layer.${c.layer}`);
  return c.frames && c.frames !== "all" && c.layer !== "paused" ? `${layer}, ${t(`tech.frames.${c.frames}`)}` : layer;
}

/**
 * The bridge's estimate of a site's downlink, the layers it receives and why not more: "1,2 Mbit/s ·
 * 1 cao, 3 thấp, ¼ khung hình · giới hạn theo ước tính".
 * @param {any} s
 */
function downlinkText(s) {
  /** @type {Map<string, number>} */
  const counts = new Map();
  const order = ["high", "medium", "low", "paused"];
  const cameras = [...(s.receiving || [])].sort((/** @type {any} */ a, /** @type {any} */ b) => order.indexOf(a.layer) - order.indexOf(b.layer));
  for (const c of cameras) counts.set(cameraText(c), (counts.get(cameraText(c)) || 0) + 1);
  const layers = [...counts].map(([text, n]) => `${n} ${text}`).join("; ");
  const parts = [s.downlink_bps ? rate(s.downlink_bps, num) : t("tech.no_estimate")];
  if (layers) parts.push(layers);
  if (s.limited_by) parts.push(t(`tech.limited.${s.limited_by}`));
  if (s.audio_plain) parts.push(t("tech.audio_plain"));
  if (s.line && s.line.down_kbps) parts.push(t("tech.line_ceiling", { rate: rate(s.line.down_kbps * 1000, num) }));
  return parts.join(" · ");
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
      <td class="jitter"></td><td class="rtt"></td><td class="downlink"></td><td class="video"></td><td class="audio"></td>
      <td class="spark"></td><td class="actions"></td>`;
    const sparkCell = /** @type {HTMLElement} */ (tr.querySelector(".spark"));
    for (const series of SERIES) {
      const line = document.createElement("div");
      line.className = "spark-line";
      line.dataset.series = series.key;
      const label = document.createElement("span");
      label.className = "spark-label";
      label.textContent = t(series.label);
      const c = document.createElement("canvas");
      c.width = 96;
      c.height = 18;
      c.dataset.series = series.key;
      const top = document.createElement("span");
      top.className = "spark-top";
      line.append(label, c, top);
      sparkCell.append(line);
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
    actions.append(lineForm(s.id));
    /** @type {HTMLElement} */ ($("sites").querySelector("tbody")).append(tr);
    rows.set(s.id, tr);
  }
  return tr;
}

/**
 * The site's line ceilings, set live: what it receives and sends, kbit/s, empty for none. The
 * fields take the current ceilings when opened, never while being typed in.
 * @param {string} site
 */
function lineForm(site) {
  const details = document.createElement("details");
  details.className = "line";
  details.innerHTML = `<summary></summary><form><label><span class="down-label"></span> <input name="down" type="number" min="200" step="50"></label>
    <label><span class="up-label"></span> <input name="up" type="number" min="200" step="50"></label> <button type="submit"></button></form>`;
  /** @type {HTMLElement} */ (details.querySelector("summary")).textContent = t("tech.line.summary");
  /** @type {HTMLElement} */ (details.querySelector(".down-label")).textContent = t("tech.line.down");
  /** @type {HTMLElement} */ (details.querySelector(".up-label")).textContent = t("tech.line.up");
  /** @type {HTMLElement} */ (details.querySelector("button")).textContent = t("tech.line.set");
  const form = /** @type {HTMLFormElement} */ (details.querySelector("form"));
  const down = /** @type {HTMLInputElement} */ (form.elements.namedItem("down"));
  const up = /** @type {HTMLInputElement} */ (form.elements.namedItem("up"));
  for (const input of [down, up]) input.placeholder = t("tech.line.none");
  details.addEventListener("toggle", () => {
    if (!details.open) return;
    const line = lastView?.sites?.find((/** @type {any} */ x) => x.id === site)?.line || {};
    down.value = line.down_kbps ? String(line.down_kbps) : "";
    up.value = line.up_kbps ? String(line.up_kbps) : "";
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    /** @param {HTMLInputElement} input */
    const kbps = (input) => (input.value.trim() === "" ? null : Number(input.value));
    const [downlink_kbps, uplink_kbps] = [kbps(down), kbps(up)];
    const what = { action: t("tech.line.action"), site: nameOf(site) };
    if ([downlink_kbps, uplink_kbps].some((k) => k !== null && !(Number.isInteger(k) && k >= 200))) {
      showFeedback("error", t("tech.failed", { ...what, why: t("tech.line.bad") }));
      return;
    }
    post("/api/tech/line", { site, downlink_kbps, uplink_kbps }, what);
  });
  return details;
}

/** @param {string} site @param {string} action */
function act(site, action) {
  post("/api/tech/action", { site, action }, { action: t(`tech.action.${action}`), site: nameOf(site) });
}

/**
 * A technician's request, its outcome on screen.
 * @param {string} path @param {object} request @param {{action: string, site: string}} what
 */
async function post(path, request, what) {
  showFeedback("pending", t("tech.sending", what));
  try {
    const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(request) });
    const body = await r.json().catch(() => ({}));
    if (r.ok) showFeedback("ok", t("tech.done", what));
    else showFeedback("error", t("tech.failed", { ...what, why: say(`error.${body.code}`, body.message || r.statusText) }));
  } catch {
    showFeedback("error", t("tech.failed", { ...what, why: t("tech.unreachable") }));
  }
}

/** @param {string} key @param {string} fallback */
function say(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

/** The last view the page rendered, for tests and consoles. */
/** @type {any} */
let lastView = null;

/**
 * The state cell: connection first (held: how long the seat is kept), then media.
 * @param {any} s
 */
function stateText(s) {
  if (s.connection === "absent") return t("tech.status.absent");
  if (s.connection === "held") return t("tech.held", { seconds: num(Math.max(0, Math.ceil((s.held_left_ms ?? 0) / 1000))) });
  if (s.media === "none") return t("tech.media.none");
  if (s.media === "stalled") return t("tech.media.stalled", { seconds: num((s.last_packet_age_ms ?? 0) / 1000, 1) });
  const path = s.path ? ` · ${t(`tech.path.${s.path}`)}` : "";
  const candidate = s.candidate ? ` (${s.candidate})` : "";
  return `${t(`tech.status.${s.status}`)}${path}${candidate} · ${num((s.last_packet_age_ms ?? 0) / 1000, 1)} s`;
}

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
  if (v.time_zone && v.time_zone !== timeZone) {
    timeZone = v.time_zone;
    time = clock(timeZone);
  }
  for (const s of v.sites) names.set(s.id, s.name);
  const to = /** @type {HTMLSelectElement} */ ($("notice-to"));
  if (to.options.length === 0) {
    to.append(new Option(t("message.to_all"), ""), ...v.sites.map((/** @type {any} */ s) => new Option(s.name, s.id)));
  }
  renderHelp(v.help || []);
  renderEvents(v.events || []);
  showStatus("connected", t("tech.updated", { time: time(Date.now()), zone: timeZone }));
  $("overall").textContent = v.status === "ok" ? t("tech.ok") : t("tech.degraded", { n: v.alarms.length });
  $("overall").dataset.status = v.status;
  for (const s of v.sites) {
    const tr = row(s);
    tr.dataset.status = s.status;
    tr.dataset.connection = s.connection;
    tr.dataset.media = s.media;
    const cell = (/** @type {string} */ c, /** @type {string} */ text) => { /** @type {HTMLElement} */ (tr.querySelector(`.${c}`)).textContent = text; };
    cell("name", s.name);
    tr.dataset.path = s.path;
    cell("state", stateText(s));
    // Numbers only while they are current: a held or stalled site's last figures are history.
    const live = s.connection === "connected" && s.media === "flowing";
    const dash = "–";
    cell("in", live ? `${rate(s.audio_in.bitrate_bps + s.video_in.bitrate_bps, num)} · ${num(s.audio_in.packets_per_second + s.video_in.packets_per_second)} p/s` : dash);
    cell("out", s.connection === "connected" ? rate(s.bitrate_out_bps, num) : dash);
    cell("loss", live ? `${num(Math.max(s.audio_in.loss_percent, s.video_in.loss_percent), 1)} %` : dash);
    cell("jitter", live ? `${num(Math.max(s.audio_in.jitter_ms, s.video_in.jitter_ms), 1)} ms` : dash);
    cell("rtt", live && s.rtt_ms !== null ? `${num(s.rtt_ms)} ms` : dash);
    cell("downlink", s.connection === "connected" ? downlinkText(s) : dash);
    /** @type {HTMLElement} */ (tr.querySelector(".downlink")).title = (s.receiving || []).map((/** @type {{site: string, layer: string, frames?: string}} */ c) => `${nameOf(c.site)}: ${cameraText(c)}`).join("\n");
    tr.dataset.limited = s.limited_by || "";
    cell("video", live ? `${num(s.video_in.frames_per_second, 1)} ${t("tech.fps")}${s.video_in.width ? ` · ${s.video_in.width}×${s.video_in.height}` : ""}` : dash);
    // "+RED": the site's browser sends each sound twice (RFC 2198), so one lost packet is not heard.
    const redundant = s.audio_in.redundant_percent > 50;
    cell("audio", live ? `${num(s.audio_level, 2)}${redundant ? ` · ${t("tech.red")}` : ""}` : dash);
    /** @type {HTMLElement} */ (tr.querySelector(".audio")).title = live && redundant ? t("tech.red_title") : "";
    const hist = s.history;
    for (const series of SERIES) {
      const line = /** @type {HTMLElement} */ (tr.querySelector(`.spark-line[data-series="${series.key}"]`));
      const top = spark(/** @type {HTMLCanvasElement} */ (line.querySelector("canvas")), hist.map(series.value), series.colour, series.top);
      /** @type {HTMLElement} */ (line.querySelector(".spark-top")).textContent = top > 0 ? series.unit(top) : "";
    }
  }
  $("alarms").replaceChildren(...(v.alarms.length ? v.alarms.map((/** @type {any} */ a) => {
    const li = document.createElement("li");
    li.dataset.alarm = a.alarm;
    li.dataset.site = a.site;
    const why = a.reason ? reasonText(a.reason, words) : a.detail;
    li.textContent = `${time(a.since_ms)} — ${nameOf(a.site)}: ${say(`alarm.${a.alarm}`, a.alarm)}${why ? ` (${why})` : ""}`;
    return li;
  }) : [Object.assign(document.createElement("li"), { className: "empty", textContent: t("tech.no_alarms") })]));
}

/**
 * Sites asking for help, oldest first, each with a button to mark it handled.
 * @param {{site: string, name: string, since_ms: number, text: string}[]} help
 */
function renderHelp(help) {
  $("help-box").hidden = help.length === 0;
  $("help-list").replaceChildren(...help.map((h) => {
    const done = Object.assign(document.createElement("button"), { type: "button", textContent: t("tech.help.done") });
    done.addEventListener("click", () => act(h.site, "help_done"));
    const li = document.createElement("li");
    li.dataset.site = h.site;
    li.append(`${time(h.since_ms)} — ${h.name}${h.text ? `: ${h.text}` : ""} `, done);
    return li;
  }));
}

$("notice-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const to = /** @type {HTMLSelectElement} */ ($("notice-to")).value;
  const input = /** @type {HTMLInputElement} */ ($("notice-text"));
  const what = { action: t("tech.notice.heading"), site: to ? nameOf(to) : t("message.to_all") };
  showFeedback("pending", t("tech.sending", what));
  try {
    const r = await fetch("/api/tech/notice", { method: "POST", headers, body: JSON.stringify(to ? { site: to, text: input.value } : { text: input.value }) });
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      input.value = "";
      showFeedback("ok", t("tech.done", what));
    } else showFeedback("error", t("tech.failed", { ...what, why: say(`error.${body.code}`, body.message || r.statusText) }));
  } catch {
    showFeedback("error", t("tech.failed", { ...what, why: t("tech.unreachable") }));
  }
});

/** @param {any[]} events */
function renderEvents(events) {
  $("events").replaceChildren(...events.slice().reverse().map((e) => {
    const li = document.createElement("li");
    li.dataset.kind = e.kind;
    li.dataset.code = e.code;
    const at = document.createElement("time");
    at.dateTime = new Date(e.at_ms).toISOString();
    at.textContent = time(e.at_ms);
    li.append(at, ` ${e.site_id ? `${nameOf(e.site_id)}: ` : ""}${eventText(e, words)}`);
    return li;
  }));
}

$("readiness").addEventListener("click", async () => {
  const button = /** @type {HTMLButtonElement} */ ($("readiness"));
  button.disabled = true;
  $("report-box").hidden = false;
  $("report").textContent = t("tech.checking");
  $("report-box").scrollIntoView({ block: "start" });
  try {
    const r = await fetch("/api/tech/readiness", { method: "POST", headers });
    const v = await r.json();
    const list = document.createElement("ul");
    for (const s of v.sites) {
      const li = document.createElement("li");
      li.dataset.site = s.site;
      li.dataset.pass = String(s.pass);
      const failed = s.checks.filter((/** @type {any} */ c) => !c.pass).map((/** @type {any} */ c) => `${t(`check.${c.name}`)}: ${c.reason ? checkText(c.reason, words) : c.detail}`);
      li.textContent = `${s.pass ? "✔" : "✘"} ${s.name}${failed.length ? ` — ${failed.join("; ")}` : ""}`;
      list.append(li);
    }
    const when = document.createElement("p");
    when.className = "when";
    when.textContent = t(v.pass ? "tech.readiness_all_pass" : "tech.readiness_result", { time: time(Date.now()) });
    $("report").replaceChildren(when, list);
  } catch {
    $("report").textContent = t("tech.unreachable");
  } finally {
    button.disabled = false;
    $("report-box").scrollIntoView({ block: "start" });
  }
});
$("report-close").addEventListener("click", () => { $("report-box").hidden = true; });

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
