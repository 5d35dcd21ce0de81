// What one ohlcv_indexer run did, ticker by ticker. Data: api/run?run_id= (ohlcv/overview/run.py).
"use strict";

async function load() {
  const dag = ohlcv.params.get("dag_id") || "ohlcv_indexer";
  const runId = ohlcv.params.get("run_id") || "";
  if (dag !== "ohlcv_indexer") {
    document.getElementById("note").textContent = `This view shows what an ohlcv_indexer run did; ${dag} is another DAG.`;
    return;
  }
  let doc;
  try {
    doc = await ohlcv.json(`api/run?run_id=${encodeURIComponent(runId)}`);
  } catch (error) {
    ohlcv.fail("cards", error);
    return;
  }
  document.getElementById("title").textContent = `Run ${doc.run_id}`;
  if (doc.record) document.getElementById("state").replaceChildren(ohlcv.badge(doc.record.state));
  const notes = [];
  if (!doc.record) notes.push("The run has not finished, or its record is no longer among the newest 200.");
  if (doc.expired) notes.push("Its per-ticker record is gone: runs keep it two days.");
  document.getElementById("note").textContent = notes.join(" ");
  cards(doc);
  tables(doc);
  tickers(doc);
  document.body.dataset.loaded = "true";
}

function cards(doc) {
  const card = ohlcv.card;
  const record = doc.record || {};
  const items = [
    card("as of", record.as_of),
    card("took s", ohlcv.number(record.duration_seconds)),
    card("vendor calls", ohlcv.number(record.vendor_calls)),
    card("published cut", record.published),
  ];
  for (const [outcome, count] of Object.entries(doc.outcomes)) items.push(card(outcome, ohlcv.number(count)));
  document.getElementById("cards").replaceChildren(...items);
}

function tables(doc) {
  const rows = Object.entries(doc.tables).sort();
  if (!rows.length) {
    const line = ohlcv.el("tr");
    line.append(ohlcv.el("td", "no market table was applied, missing or refused in this run", { colspan: "2", class: "muted" }));
    document.querySelector("#tables tbody").replaceChildren(line);
    return;
  }
  document.querySelector("#tables tbody").replaceChildren(...rows.map(([day, note]) => {
    const row = ohlcv.el("tr");
    row.append(ohlcv.el("td", day), ohlcv.el("td", note, { class: "reason" }));
    return row;
  }));
}

function tickers(doc) {
  const rows = doc.tickers.slice();
  const table = document.getElementById("tickers");
  const body = table.querySelector("tbody");
  const text = document.getElementById("filter");
  const outcome = document.getElementById("outcome-filter");
  outcome.append(...Object.keys(doc.outcomes).map((name) => ohlcv.el("option", name, { value: name })));
  const render = () => {
    const wanted = text.value.trim().toLowerCase();
    const shown = rows.filter(
      (row) =>
        (!outcome.value || row.outcome === outcome.value) &&
        (!wanted || row.code.toLowerCase().includes(wanted) || `${row.reason} ${row.handed_on || ""}`.toLowerCase().includes(wanted)),
    );
    body.replaceChildren(...shown.map((row) => {
      const line = ohlcv.el("tr", "", { "data-code": row.code });
      const code = ohlcv.el("td");
      code.append(ohlcv.link(`ticker?code=${encodeURIComponent(row.code)}`, row.code));
      line.append(code, ohlcv.el("td", row.outcome), ohlcv.el("td", row.handed_on || "", { class: "reason" }),
        ohlcv.el("td", row.reason, { class: "reason" }));
      return line;
    }));
    document.getElementById("shown").textContent = `${shown.length} shown of ${rows.length}`;
  };
  ohlcv.sortable(table, rows, render);
  text.oninput = render;
  outcome.oninput = render;
  render();
}

load();
