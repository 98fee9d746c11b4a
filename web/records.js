// @ts-check
/**
 * The secretariat's archive: past conferences with their minutes (to print and sign, or as
 * CSV and JSON) and the recordings with their files. A member of the secretariat, the chair
 * or a technician signs in with a name and password (`POST /api/login`); the session cookie
 * it sets lets the minutes and files open in their own tabs. The server decides who may see
 * what (a ward's or a stranger's request is refused there). Each recording also has one
 * composed file (the meeting as HQ saw it, MP4): its progress is shown while the bridge makes
 * it, and it can be made again (`POST /api/recordings/<id>/compose`).
 */
import { loadStrings, t, toggleLanguage, translatePage } from "./i18n.js";
import { DEFAULT_TIME_ZONE, clock } from "./techtext.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
await loadStrings();
translatePage();
$("lang").addEventListener("click", () => toggleLanguage(() => { translatePage(); load(); }));
const time = clock(DEFAULT_TIME_ZONE);
/** `04/12/2026` in Hà Nội time. @param {number} ms */
const day = (ms) => new Intl.DateTimeFormat("vi-VN", { timeZone: DEFAULT_TIME_ZONE, day: "2-digit", month: "2-digit", year: "numeric" }).format(ms);

/** @param {string} phase @param {string} text */
function showStatus(phase, text) {
  $("status").dataset.phase = phase;
  $("status").textContent = text;
}

/** @param {string} href @param {string} text */
function link(href, text) {
  return Object.assign(document.createElement("a"), { href, textContent: text, target: "_blank", rel: "noopener" });
}

/** @param {(Node|string)[][]} cells */
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    td.append(...c.flatMap((x, i) => (i ? [" · ", x] : [x])));
    tr.append(td);
  }
  return tr;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let refresh;

/**
 * The composed file's cell: its link, its progress, or why it failed and a button to try again.
 * @param {any} x a recording @param {(name: string) => string} file
 * @returns {(Node|string)[]}
 */
function composed(x, file) {
  const c = x.composition;
  const again = (/** @type {string} */ label) => {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: label, className: "compose" });
    b.addEventListener("click", async () => {
      b.disabled = true;
      const r = await fetch(`/api/recordings/${encodeURIComponent(x.id)}/compose`, { method: "POST", credentials: "same-origin" });
      if (!r.ok) showStatus("error", (await r.json().catch(() => ({}))).message || r.statusText);
      await load();
    });
    return b;
  };
  if (!c) return x.stopped_ms ? [t("records.compose_none"), again(t("records.compose"))] : [];
  switch (c.state) {
    case "queued":
      return [t("records.compose_queued")];
    case "running": {
      const bar = Object.assign(document.createElement("progress"), { max: 100, value: c.percent });
      return [bar, t("records.compose_running", { percent: c.percent })];
    }
    case "done":
      return [link(file(c.file), c.file)];
    default:
      return [t("records.compose_failed", { error: c.error || "" }), again(t("records.compose_again"))];
  }
}

/** Lists conferences and recordings; false if not signed in. */
async function load() {
  const r = await fetch("/api/conferences", { credentials: "same-origin" });
  if (r.status === 401 || r.status === 403) {
    $("login").hidden = false;
    $("archive").hidden = true;
    showStatus(r.status === 403 ? "error" : "idle", r.status === 403 ? t("records.forbidden") : t("records.sign_in"));
    return false;
  }
  const { conferences } = await r.json();
  $("login").hidden = true;
  $("archive").hidden = false;
  /** @type {HTMLElement} */ ($("conferences").querySelector("tbody")).replaceChildren(...conferences.map((/** @type {any} */ c) => {
    const minutes = `/api/conferences/${c.id}/minutes`;
    const tr = row([
      [c.title],
      [day(c.started_ms)],
      [`${time(c.started_ms)} – ${c.ended_ms ? time(c.ended_ms) : t("records.running")}`],
      [link(`${minutes}?format=html`, t("records.print")), link(`${minutes}?format=csv`, "CSV"), link(minutes, "JSON")],
    ]);
    tr.dataset.conference = String(c.id);
    return tr;
  }));
  const rec = await fetch("/api/recordings", { credentials: "same-origin" });
  const { recordings } = rec.ok ? await rec.json() : { recordings: [] };
  /** @type {HTMLElement} */ ($("recordings").querySelector("tbody")).replaceChildren(...recordings.map((/** @type {any} */ x) => {
    const state = x.complete ? t("records.complete") : x.error ? t("records.interrupted", { error: x.error }) : t("records.recording_now");
    const file = (/** @type {string} */ name) => `/api/recordings/${encodeURIComponent(x.id)}/${encodeURIComponent(name)}`;
    const tr = row([
      [`${x.title} — ${day(x.started_ms)} ${time(x.started_ms)}`],
      [state],
      composed(x, file),
      x.tracks.map((/** @type {any} */ f) => link(file(f.file), f.file)),
    ]);
    tr.dataset.recording = x.id;
    tr.dataset.compose = x.composition?.state ?? "none";
    tr.dataset.percent = String(x.composition?.percent ?? 0);
    return tr;
  }));
  // While a recording is being composed, its progress is read again every two seconds.
  clearTimeout(refresh);
  if (recordings.some((/** @type {any} */ x) => ["queued", "running"].includes(x.composition?.state))) refresh = setTimeout(load, 2000);
  showStatus("connected", t("records.count", { conferences: conferences.length, recordings: recordings.length }));
  return true;
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = /** @type {HTMLInputElement} */ ($("user")).value.trim();
  const password = /** @type {HTMLInputElement} */ ($("password")).value;
  const r = await fetch("/api/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, password }) });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    const text = t(`error.${body.code}`);
    return showStatus("error", text.startsWith("error.") ? body.message || r.statusText : text);
  }
  /** @type {HTMLInputElement} */ ($("password")).value = "";
  await load();
});

await load();
Object.assign(window, { diemcau: { reload: load } });
