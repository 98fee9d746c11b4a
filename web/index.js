// @ts-check
import { loadStrings, t, toggleLanguage, translatePage } from "./i18n.js";

await loadStrings();
translatePage();
document.getElementById("lang")?.addEventListener("click", toggleLanguage);
const list = /** @type {HTMLElement} */ (document.getElementById("sites"));
try {
  /** @type {{title: string, sites: {id: string, name: string, role: string}[]}} */
  const data = await (await fetch("/api/sites")).json();
  document.title = `${data.title} — Điểm Cầu`;
  const title = document.getElementById("title");
  if (title) title.textContent = data.title;
  list.replaceChildren(...data.sites.map((s) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/site/${encodeURIComponent(s.id)}`;
    a.textContent = s.name;
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = t(`role.${s.role}`);
    li.append(a, " ", role);
    return li;
  }));
} catch {
  list.textContent = t("index.failed");
}
