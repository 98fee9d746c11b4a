// @ts-check
/**
 * Written notices and requests for help on the site and chair pages. A notice from the chair
 * or a technician stays on the page it is for until someone there presses "Đã rõ"; the chair
 * sends notices to one site or all and sees who has read them; any site can call the
 * technicians, and its button says so until one has handled it. All of it lives in the
 * server's state: a page that reloads shows exactly what is still open.
 */
import { t } from "./i18n.js";

/**
 * @typedef {{id: number, from: "chair"|"technician", to?: string, text: string, sent_ms: number, acked: string[]}} Notice
 * @typedef {{act: (msg: any) => void, siteId: string, isChair: boolean, nameOf: (id: string) => string,
 *   wards: {id: string, name: string}[]}} Context
 */

/** @param {string} tag @param {Record<string, any>} [props] @param {(Node|string)[]} [children] */
function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/**
 * Notices for this site, shown in `box` until acknowledged; call with each state's notices.
 * @param {Context} ctx @param {HTMLElement} box
 * @returns {(notices: Notice[]) => void}
 */
export function noticeBoard(ctx, box) {
  return (notices) => {
    const open = notices.filter((n) => (!n.to || n.to === ctx.siteId) && !n.acked.includes(ctx.siteId) && !(ctx.isChair && n.from === "chair"));
    box.hidden = open.length === 0;
    box.replaceChildren(...open.map((n) => {
      const ok = el("button", { type: "button", textContent: t("message.ack") });
      ok.addEventListener("click", () => { ok.disabled = true; ctx.act({ type: "ack_notice", notice: n.id }); });
      const item = el("div", { className: "site-notice" }, [
        el("strong", { textContent: t(`message.from.${n.from}`) }),
        el("p", { textContent: n.text }),
        ok,
      ]);
      item.dataset.notice = String(n.id);
      return item;
    }));
  };
}

/**
 * The chair's notices: a form to send one, and the recent ones with who has read them.
 * @param {Context} ctx @param {HTMLElement} box
 * @returns {(notices: Notice[]) => void}
 */
export function chairNotices(ctx, box) {
  const to = el("select", {}, [el("option", { value: "", textContent: t("message.to_all") }), ...ctx.wards.map((w) => el("option", { value: w.id, textContent: w.name }))]);
  const text = el("input", { type: "text", maxLength: 300, required: true, placeholder: t("message.placeholder") });
  const form = el("form", { className: "notice-form" }, [to, text, el("button", { type: "submit", textContent: t("message.send") })]);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = /** @type {HTMLInputElement} */ (text).value.trim();
    if (!body) return;
    /** @type {any} */
    const msg = { type: "send_notice", text: body };
    const site = /** @type {HTMLSelectElement} */ (to).value;
    if (site) msg.site = site;
    ctx.act(msg);
    /** @type {HTMLInputElement} */ (text).value = "";
  });
  const list = el("ul", { className: "notice-list" });
  box.replaceChildren(form, list);
  return (notices) => {
    list.replaceChildren(...notices.slice().reverse().slice(0, 5).map((n) => {
      const readers = n.to ? (n.acked.includes(n.to) ? t("message.read") : t("message.unread")) : t("message.read_by", { count: n.acked.length });
      const item = el("li", {}, [
        el("span", { className: "to", textContent: n.to ? ctx.nameOf(n.to) : t("message.to_all") }),
        " ",
        el("span", { textContent: n.text }),
        " ",
        el("span", { className: "read", textContent: `(${readers})` }),
      ]);
      item.dataset.read = String(n.to ? n.acked.includes(n.to) : n.acked.length > 0);
      return item;
    }));
  };
}

/**
 * The "call a technician" button; call with this site's presence in each state.
 * @param {Context} ctx @param {HTMLButtonElement} button
 * @returns {(mine: {help?: {since_ms: number}}|undefined) => void}
 */
export function helpButton(ctx, button) {
  button.addEventListener("click", () => {
    if (button.dataset.asked !== "true") ctx.act({ type: "ask_help", text: "" });
  });
  return (mine) => {
    const asked = !!mine?.help;
    button.dataset.asked = String(asked);
    button.textContent = asked ? t("help.asked") : t("help.ask");
  };
}
