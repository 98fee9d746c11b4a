// @ts-check
/** Strings for the UI: Vietnamese by default, English on request (?lang=en or the toggle). */

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

/** Switches language and reloads the page (keeping the URL fragment, which holds the key). */
export function toggleLanguage() {
  localStorage.setItem("diemcau.lang", lang === "vi" ? "en" : "vi");
  const url = new URL(location.href);
  url.searchParams.delete("lang");
  location.replace(url.toString());
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
