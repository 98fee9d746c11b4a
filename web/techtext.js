// @ts-check
/**
 * What the technicians' page says, in words. The server sends stable codes and numbers (an
 * event's `code` and `params`, an alarm's or a check's `reason`); this module turns them into
 * the page's language with the strings of web/i18n/, writes times in the meeting's time
 * zone on a 24-hour clock and numbers as the language writes them (12,3 in Vietnamese).
 * No DOM and no fetching: tech.js renders what these return, and tests call them directly.
 */

/** @typedef {(key: string, params?: Record<string, string|number>) => string} Translate */
/** @typedef {{t: Translate, num: (x: number, digits?: number) => string, nameOf: (site: string) => string}} Words */

/** The zone pages fall back to when the server names none the browser knows. */
export const DEFAULT_TIME_ZONE = "Asia/Ho_Chi_Minh";

/**
 * A clock for the meeting: Unix ms → "14:05:09", in `timeZone`, 24-hour, whatever the
 * browser's own zone and locale.
 * @param {string} timeZone an IANA name, e.g. "Asia/Ho_Chi_Minh"
 * @returns {(ms: number) => string}
 */
export function clock(timeZone) {
  /** @type {Intl.DateTimeFormat} */
  let f;
  const options = /** @type {const} */ ({ hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  try {
    f = new Intl.DateTimeFormat("en-GB", { ...options, timeZone });
  } catch {
    f = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: DEFAULT_TIME_ZONE });
  }
  return (ms) => {
    const part = (/** @type {string} */ type) => f.formatToParts(ms).find((p) => p.type === type)?.value ?? "00";
    return `${part("hour")}:${part("minute")}:${part("second")}`;
  };
}

/**
 * Numbers as the page's language writes them: `num(12.345, 1)` is "12,3" in Vietnamese.
 * @param {string} lang "vi" or "en"
 * @returns {(x: number, digits?: number) => string}
 */
export function numbers(lang) {
  /** @type {Map<number, Intl.NumberFormat>} */
  const formats = new Map();
  return (x, digits = 0) => {
    let f = formats.get(digits);
    if (!f) {
      f = new Intl.NumberFormat(lang === "en" ? "en-US" : "vi-VN", { minimumFractionDigits: digits, maximumFractionDigits: digits });
      formats.set(digits, f);
    }
    return f.format(x);
  };
}

/**
 * A bitrate in words: "1,25 Mb/s", "640 kb/s".
 * @param {number} bps @param {Words["num"]} num
 */
export function rate(bps, num) {
  return bps >= 1e6 ? `${num(bps / 1e6, 2)} Mb/s` : `${num(Math.round(bps / 1e3))} kb/s`;
}

/**
 * The translation of `key`, or `fallback` when the strings have none.
 * @param {Translate} t @param {string} key @param {Record<string, string|number>} params @param {string} fallback
 */
function say(t, key, params, fallback) {
  const text = t(key, params);
  return text === key ? fallback : text;
}

/**
 * Why an alarm holds (`{code, …numbers}` from the server's `reason`), in words.
 * @param {any} reason @param {Words} w
 */
export function reasonText(reason, w) {
  if (!reason || typeof reason.code !== "string") return "";
  const { t, num } = w;
  /** @type {Record<string, string|number>} */
  const p = {};
  if (typeof reason.seconds === "number") p.seconds = num(reason.seconds, 1);
  if (typeof reason.ms === "number") p.ms = num(reason.ms);
  if (typeof reason.percent === "number") p.percent = num(reason.percent, 1);
  if (typeof reason.level === "number") p.level = num(reason.level, 3);
  if (typeof reason.limit === "number") p.limit = num(reason.limit, reason.code === "floor_holder_silent" ? 2 : 0);
  if (typeof reason.error === "string") p.error = reason.error;
  if (typeof reason.recording === "string") p.recording = reason.recording;
  if (typeof reason.path === "string") p.path = reason.path;
  if (reason.code === "storage_failed") p.problem = say(t, `tech.storage.${reason.problem}`, {}, reason.error ?? "");
  if (typeof reason.refused === "number") p.refused = num(reason.refused);
  if (typeof reason.budget === "string") p.budget = say(t, `tech.budget.${reason.budget}`, {}, reason.budget);
  const text = say(t, `tech.reason.${reason.code}`, p, reason.code);
  if (reason.code === "frozen_video" && reason.cause) {
    const cause = reason.cause;
    return `${text}: ${say(t, `tech.cause.${cause.code}`, { detail: cause.detail ?? "" }, cause.detail ?? cause.code)}`;
  }
  return text;
}

/**
 * One readiness check's finding (`{code, …numbers}`), in words.
 * @param {any} reason @param {Words} w
 */
export function checkText(reason, w) {
  if (!reason || typeof reason.code !== "string") return "";
  const { t, num } = w;
  /** @type {Record<string, string|number>} */
  const p = {};
  if (typeof reason.seconds_left === "number") p.seconds = num(reason.seconds_left);
  if (typeof reason.pps === "number") p.pps = num(reason.pps);
  if (typeof reason.level === "number") p.level = num(reason.level, 2);
  if (typeof reason.fps === "number") p.fps = num(reason.fps, 1);
  if (typeof reason.ms === "number") p.ms = num(reason.ms);
  if (typeof reason.percent === "number") p.percent = num(reason.percent, 1);
  if (typeof reason.limit === "number") p.limit = num(reason.limit);
  return say(t, `tech.check_reason.${reason.code}`, p, reason.code);
}

/**
 * One line of the event log (`{at_ms, site_id, kind, code, params}` from GET /api/tech), in
 * words, without its time and site (the page puts those in front).
 * @param {any} e @param {Words} w
 */
export function eventText(e, w) {
  const { t, num, nameOf } = w;
  const p = e.params || {};
  const alarm = (/** @type {string} */ code) => say(t, `alarm.${code}`, {}, code);
  const onOff = (/** @type {boolean} */ off) => t(off ? "tech.word.off" : "tech.word.on");
  switch (e.code) {
    case "alarm_raised": {
      const why = p.reason ? reasonText(p.reason, w) : p.text || "";
      return t("tech.event.alarm_raised", { alarm: alarm(p.alarm), reason: why });
    }
    case "alarm_cleared":
      return t("tech.event.alarm_cleared", { alarm: alarm(p.alarm), seconds: num(p.seconds ?? 0) });
    case "mute":
      return t("tech.event.mute", { mic: onOff(Boolean(p.audio_muted)), camera: onOff(Boolean(p.video_muted)) });
    case "tech_line": {
      const ceiling = (/** @type {number|null|undefined} */ k) => (k ? `${num(k)} kbit/s` : t("tech.line.none"));
      return t("tech.event.tech_line", { down: ceiling(p.down_kbps), up: ceiling(p.up_kbps) });
    }
    case "layout":
      return t("tech.event.layout", { layout: say(t, `tech.layout.${p.layout}`, {}, String(p.layout)) });
    case "readiness_check": {
      const failed = (p.failed || []).map(nameOf);
      return failed.length
        ? t("tech.event.readiness_failed", { passed: num((p.passed || []).length), failed: num(failed.length), sites: failed.join(", ") })
        : t("tech.event.readiness_passed", { passed: num((p.passed || []).length) });
    }
    default: {
      /** @type {Record<string, string|number>} */
      const params = {};
      for (const [k, v] of Object.entries(p)) params[k] = typeof v === "number" ? num(v) : String(v);
      return say(t, `tech.event.${e.code}`, params, `${e.kind}${p.detail ? ` — ${p.detail}` : ""}`);
    }
  }
}
