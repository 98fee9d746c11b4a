// @ts-check
/** Strings for the UI: Vietnamese by default, English on request (?lang=en or the toggle, which
 * applies at once). */

/** @type {Record<string, string>} */
let strings = {};
export let lang = "vi";

export async function loadStrings() {
  const q = new URLSearchParams(location.search).get("lang");
  lang = q === "en" || q === "vi" ? q : (localStorage.getItem("diemcau.lang") || "vi");
  if (lang !== "en") lang = "vi";
  document.documentElement.lang = lang;
  strings = await (await fetch(`/i18n/${lang}.json`)).json();
}

/** @param {string} key @param {Record<string, string|number>} [params] */
export function t(key, params = {}) {
  const s = strings[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ""));
}

/**
 * Switches language at once, without a reload (a reload would drop a live meeting): the
 * page's fixed texts are translated here, `rerender` redraws what the page built itself.
 * @param {(() => void) | Event} [rerender] (an event when used as a click handler directly)
 */
export async function toggleLanguage(rerender) {
  const next = lang === "vi" ? "en" : "vi";
  localStorage.setItem("diemcau.lang", next);
  const loaded = await (await fetch(`/i18n/${next}.json`)).json();
  lang = next;
  strings = loaded;
  document.documentElement.lang = lang;
  translatePage();
  if (typeof rerender === "function") rerender();
}

/** Fills every element carrying data-i18n="key". */
export function translatePage() {
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n || "");
  });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    /** @type {HTMLInputElement} */ (el).placeholder = t(/** @type {HTMLElement} */ (el).dataset.i18nPlaceholder || "");
  });
}
