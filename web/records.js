// @ts-check
/**
 * The secretariat's archive: past conferences with their minutes (to print and sign, or as
 * CSV and JSON) and the recordings with their files. A member of the secretariat, the chair
 * or a technician signs in with a name and password (`POST /api/login`); the session cookie
 * it sets lets the minutes and files open in their own tabs. The server decides who may see
 * what (a ward's or a stranger's request is refused there).
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
    const tr = row([
      [`${x.title} — ${day(x.started_ms)} ${time(x.started_ms)}`],
      [state],
      x.tracks.map((/** @type {any} */ f) => link(`/api/recordings/${encodeURIComponent(x.id)}/${encodeURIComponent(f.file)}`, f.file)),
    ]);
    tr.dataset.recording = x.id;
    return tr;
  }));
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
