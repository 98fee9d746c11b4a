// @ts-check
/**
 * Votes ("biểu quyết") on the site and chair pages. The chair opens a vote, sees each bridge
 * point's counts as they arrive, and closes it; a ward counts the hands in its room and
 * enters the counts, which it may correct until the vote closes. The pages only draw the
 * vote in each state and send what people enter: the server decides (only the chair opens
 * and closes; a room's counts never add up to more than its headcount).
 */
import { t } from "./i18n.js";

/**
 * @typedef {{id: number, question: string, options: string[], open: boolean, opened_ms: number,
 *   closed_ms?: number, tallies: {site: string, counts: number[]}[], totals: number[]}} Vote
 * @typedef {{act: (msg: any) => void, siteId: string, isChair: boolean, nameOf: (id: string) => string,
 *   wards: {id: string, name: string}[]}} Context
 */

/** @param {string} tag @param {Record<string, any>} [props] @param {(Node|string)[]} [children] */
function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** `Tán thành 18 · Không tán thành 1 · …` @param {string[]} options @param {number[]} counts */
function result(options, counts) {
  return options.map((o, i) => `${o}: ${counts[i] ?? 0}`).join(" · ");
}

/**
 * The vote panel of this page; call the returned function with each state's `vote`.
 * @param {Context} ctx @param {HTMLElement} box
 * @returns {(vote: Vote|undefined) => void}
 */
export function votePanel(ctx, box) {
  return ctx.isChair ? chairPanel(ctx, box) : wardPanel(ctx, box);
}

/** @param {Context} ctx @param {HTMLElement} box */
function wardPanel(ctx, box) {
  /** the vote whose form is drawn (kept while people type) */
  let drawn = 0;
  return (/** @type {Vote|undefined} */ vote) => {
    box.hidden = !vote;
    if (!vote) return;
    const mine = vote.tallies.find((x) => x.site === ctx.siteId);
    if (!vote.open) {
      drawn = 0;
      box.dataset.state = "closed";
      box.replaceChildren(
        el("h2", { textContent: t("vote.closed_heading", { question: vote.question }) }),
        el("p", { className: "vote-result", textContent: result(vote.options, vote.totals) }),
      );
      return;
    }
    box.dataset.state = "open";
    if (drawn !== vote.id) {
      drawn = vote.id;
      const inputs = vote.options.map((o, i) =>
        el("input", { type: "number", min: "0", max: "100000", required: true, name: `count-${i}`, value: mine ? String(mine.counts[i]) : "" }));
      const form = el("form", { className: "vote-form" }, [
        ...vote.options.map((o, i) => el("label", {}, [el("span", { textContent: o }), inputs[i]])),
        el("button", { type: "submit", textContent: t("vote.send") }),
      ]);
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const counts = inputs.map((i) => Math.max(0, Math.floor(Number(/** @type {HTMLInputElement} */ (i).value) || 0)));
        ctx.act({ type: "vote_counts", vote: vote.id, counts });
      });
      box.replaceChildren(el("h2", { textContent: t("vote.open_heading", { question: vote.question }) }), form, el("p", { className: "vote-sent" }));
    }
    const sent = /** @type {HTMLElement} */ (box.querySelector(".vote-sent"));
    sent.textContent = mine ? t("vote.sent", { counts: result(vote.options, mine.counts) }) : t("vote.not_sent");
    sent.dataset.sent = String(!!mine);
  };
}

/** @param {Context} ctx @param {HTMLElement} box */
function chairPanel(ctx, box) {
  const question = el("input", { type: "text", maxLength: 300, placeholder: t("vote.question") });
  const options = el("input", { type: "text", maxLength: 500, placeholder: t("vote.options_hint") });
  const openForm = el("form", { className: "vote-open" }, [question, options, el("button", { type: "submit", textContent: t("vote.open") })]);
  openForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = /** @type {HTMLInputElement} */ (question).value.trim();
    const list = /** @type {HTMLInputElement} */ (options).value.split("/").map((o) => o.trim()).filter(Boolean);
    if (!q) return /** @type {HTMLInputElement} */ (question).focus();
    /** @type {any} */
    const msg = { type: "open_vote", question: q };
    if (list.length) msg.options = list;
    ctx.act(msg);
  });
  const close = el("button", { type: "button", className: "vote-close", textContent: t("vote.close") });
  close.addEventListener("click", () => ctx.act({ type: "close_vote" }));
  const table = el("table", { className: "vote-tally" });
  const caption = el("p", { className: "vote-question" });
  /** the vote whose question the form still shows (cleared once it is open) */
  let asked = 0;
  return (/** @type {Vote|undefined} */ vote) => {
    const open = !!vote?.open;
    if (vote && vote.id !== asked && open) {
      asked = vote.id;
      /** @type {HTMLInputElement} */ (question).value = "";
      /** @type {HTMLInputElement} */ (options).value = "";
    }
    box.dataset.state = !vote ? "none" : open ? "open" : "closed";
    if (!vote) return box.replaceChildren(openForm);
    caption.textContent = open ? t("vote.open_heading", { question: vote.question }) : t("vote.closed_heading", { question: vote.question });
    const head = el("tr", {}, [el("th", { textContent: t("vote.site") }), ...vote.options.map((o) => el("th", { textContent: o }))]);
    const rows = ctx.wards.map((w) => {
      const tally = vote.tallies.find((x) => x.site === w.id);
      const row = el("tr", {}, [
        el("td", { textContent: w.name }),
        ...(tally ? tally.counts.map((c) => el("td", { textContent: String(c) })) : [el("td", { colSpan: vote.options.length, className: "missing", textContent: t("vote.waiting") })]),
      ]);
      Object.assign(row.dataset, { site: w.id, sent: String(!!tally) });
      return row;
    });
    const total = el("tr", { className: "total" }, [el("th", { textContent: t("vote.total") }), ...vote.totals.map((n) => el("th", { textContent: String(n) }))]);
    table.replaceChildren(head, ...rows, total);
    box.replaceChildren(caption, table, ...(open ? [close] : [openForm]));
  };
}
