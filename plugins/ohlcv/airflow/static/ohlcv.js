// What the OHLCV cache's pages share: fetching their JSON (same origin, relative paths, so they
// work behind a reverse proxy), building table rows without HTML injection, sorting and filtering.
"use strict";

const ohlcv = {
  async json(path) {
    const response = await fetch(path, { credentials: "same-origin" });
    if (!response.ok) {
      const detail = await response.text();
      throw new Error(`${response.status} ${response.statusText}: ${detail.slice(0, 300)}`);
    }
    return response.json();
  },

  /** An element with text (never HTML) and attributes. */
  el(tag, text = "", attributes = {}) {
    const node = document.createElement(tag);
    if (text !== null && text !== undefined) node.textContent = String(text);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  },

  /** A link to another page of the cache's, relative to this one. */
  link(href, text) {
    return ohlcv.el("a", text, { href });
  },

  /** A figure over its label, as each page's row of cards shows them (`id` on the figure). */
  card(label, value, id) {
    const node = ohlcv.el("div", "", { class: "card" });
    const figure = ohlcv.el("div", value ?? "-", id ? { class: "value", id } : { class: "value" });
    node.append(figure, ohlcv.el("div", label, { class: "label" }));
    return node;
  },

  badge(state) {
    return ohlcv.el("span", state, { class: `state ${state}` });
  },

  number(value) {
    if (value === null || value === undefined || value === "") return "";
    return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
  },

  fail(where, error) {
    const node = document.getElementById(where);
    node.replaceChildren(ohlcv.el("p", `Could not load: ${error.message}`, { class: "error" }));
  },

  /** Make a table's headers with data-key sort its rows (numbers as numbers). */
  sortable(table, rows, render) {
    let key = null;
    let direction = 1;
    for (const header of table.querySelectorAll("th[data-key]")) {
      header.classList.add("sortable");
      header.addEventListener("click", () => {
        direction = key === header.dataset.key ? -direction : 1;
        key = header.dataset.key;
        for (const other of table.querySelectorAll("th[data-key]")) other.removeAttribute("aria-sort");
        header.setAttribute("aria-sort", direction > 0 ? "ascending" : "descending");
        rows.sort((a, b) => {
          const [x, y] = [a[key], b[key]];
          if (x === y) return 0;
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * direction;
        });
        render();
      });
    }
  },

  params: new URLSearchParams(window.location.search),
};
