// The cache page: what an operator needs first after a red night, then every ticker that is
// not current, the breaker and the recent runs. Data: api/cache (ohlcv/overview/cache.py).
"use strict";

const STATES = ["current", "lagging", "failing", "inactive", "delisted"];
let runsChart = null;

async function load() {
  let doc;
  try {
    doc = await ohlcv.json("api/cache");
  } catch (error) {
    ohlcv.fail("attention", error);
    return;
  }
  document.getElementById("generated").textContent = `read ${doc.generated_at.replace("T", " ")}`;
  attention(doc);
  cards(doc);
  markets(doc);
  notCurrent(doc);
  breaker(doc);
  runs(doc);
  document.body.dataset.loaded = "true";
}

function attention(doc) {
  const last = doc.runs[0];
  const problems = [];
  if (last && last.state !== "success") problems.push(`the last run (${last.run_id}) ended ${last.state}`);
  const failing = doc.tickers.by_state.failing;
  if (failing) problems.push(`${failing} tickers failing`);
  if (doc.breaker.open) problems.push(`the vendor breaker is open: ${doc.breaker.reason}`);
  if (last && last.table_missing) problems.push(`market tables not published: ${last.table_missing}`);
  if (doc.damaged && doc.damaged.length) problems.push(`${doc.damaged.length} damaged series`);
  problems.push(...redisProblems(doc.redis));
  const box = ohlcv.el("div", "", { class: problems.length ? "attention" : "attention ok", id: "attention-box" });
  box.textContent = problems.length
    ? `Needs attention: ${problems.join("; ")}.`
    : "Nothing needs attention: the last run succeeded, no ticker fails, the breaker is closed.";
  document.getElementById("attention").replaceChildren(box);
}

// Under Sentinel: what would keep the cache from surviving the loss of its primary.
function redisProblems(redis) {
  if (!redis || redis.mode !== "sentinel") return [];
  const problems = [];
  const online = redis.replicas.filter((replica) => replica.state === "online");
  if (!online.length) problems.push("no replica is online: a failover has nothing to promote");
  const silent = redis.sentinels.filter((view) => !view.reachable);
  if (silent.length) problems.push(`${silent.length} of ${redis.sentinels.length} Sentinels do not answer`);
  return problems;
}

function cards(doc) {
  const card = ohlcv.card;
  const items = [
    card("published cut", doc.cut.last_update_at, "cut"),
    card("tickers cached through it", ohlcv.number(doc.cut.last_update_count), "cut-count"),
    card("revision", doc.revision ? doc.revision.id : "-", "revision"),
    card("tickers", ohlcv.number(doc.tickers.total), "total"),
    card("preliminary rows", ohlcv.number(doc.preliminary.rows), "preliminary"),
    card("run lock", doc.cut.is_updating ? "held (a run is writing)" : "free", "lock"),
  ];
  if (doc.universe) items.push(card("universe exact from", doc.universe.exact_from, "universe"));
  if (doc.redis) {
    const online = doc.redis.replicas.filter((replica) => replica.state === "online").length;
    const where = doc.redis.mode === "sentinel" ? `primary of ${doc.redis.service}` : "Redis";
    items.push(card(`${where}, ${online} replicas online`, doc.redis.primary, "redis"));
  }
  document.getElementById("cards").replaceChildren(...items);
}

function markets(doc) {
  const body = document.querySelector("#markets tbody");
  const rows = Object.entries(doc.tickers.by_market).map(([market, counts]) => {
    const row = ohlcv.el("tr", "", { "data-market": market });
    row.append(ohlcv.el("td", market));
    for (const state of STATES) row.append(ohlcv.el("td", ohlcv.number(counts[state]), { class: "num", "data-state": state }));
    row.append(ohlcv.el("td", ohlcv.number(STATES.reduce((sum, state) => sum + counts[state], 0)), { class: "num" }));
    return row;
  });
  const total = ohlcv.el("tr", "", { "data-market": "all" });
  total.append(ohlcv.el("th", "all"));
  for (const state of STATES) total.append(ohlcv.el("th", ohlcv.number(doc.tickers.by_state[state]), { class: "num", "data-state": state }));
  total.append(ohlcv.el("th", ohlcv.number(doc.tickers.total), { class: "num" }));
  body.replaceChildren(...rows, total);
}

function notCurrent(doc) {
  const rows = doc.not_current.slice();
  const table = document.getElementById("not-current");
  const body = table.querySelector("tbody");
  const text = document.getElementById("filter");
  const state = document.getElementById("state-filter");
  const market = document.getElementById("market-filter");
  const fill = (select, values) => {
    const keep = select.value;
    select.replaceChildren(select.options[0], ...values.map((value) => ohlcv.el("option", value, { value })));
    select.value = keep;
  };
  fill(state, STATES.filter((name) => name !== "current"));
  fill(market, Object.keys(doc.tickers.by_market));
  const render = () => {
    const wanted = text.value.trim().toLowerCase();
    const shown = rows.filter(
      (row) =>
        (!state.value || row.state === state.value) &&
        (!market.value || row.market === market.value) &&
        (!wanted || row.code.toLowerCase().includes(wanted) || (row.reason || "").toLowerCase().includes(wanted)),
    );
    body.replaceChildren(
      ...shown.map((row) => {
        const line = ohlcv.el("tr", "", { "data-code": row.code });
        const code = ohlcv.el("td");
        code.append(ohlcv.link(`ticker?code=${encodeURIComponent(row.code)}`, row.code));
        const badge = ohlcv.el("td");
        badge.append(ohlcv.badge(row.state));
        line.append(code, ohlcv.el("td", row.market), badge, ohlcv.el("td", row.last ?? "never"),
          ohlcv.el("td", row.since ?? ""), ohlcv.el("td", row.reason, { class: "reason" }));
        return line;
      }),
    );
    document.getElementById("shown").textContent = `${shown.length} shown of ${rows.length}`;
    document.getElementById("shown").dataset.count = String(shown.length);
  };
  ohlcv.sortable(table, rows, render);
  for (const control of [text, state, market]) control.oninput = render;
  render();
}

function breaker(doc) {
  const box = document.getElementById("breaker");
  const status = doc.breaker.open
    ? ohlcv.el("p", `OPEN${doc.breaker.closes_in_seconds ? `, closes in ${Math.round(doc.breaker.closes_in_seconds / 60)} min` : ""}: ${doc.breaker.reason}`, { class: "error", id: "breaker-state" })
    : ohlcv.el("p", "closed", { id: "breaker-state" });
  const log = ohlcv.el("table");
  const head = ohlcv.el("tr");
  for (const name of ["At (UTC)", "Action", "By", "Reason"]) head.append(ohlcv.el("th", name));
  log.append(head, ...doc.breaker.log.map((entry) => {
    const row = ohlcv.el("tr");
    row.append(ohlcv.el("td", entry.at), ohlcv.el("td", entry.action), ohlcv.el("td", entry.by), ohlcv.el("td", entry.reason));
    return row;
  }));
  box.replaceChildren(status, ...(doc.breaker.log.length ? [log] : [ohlcv.el("p", "no openings recorded", { class: "muted" })]));
}

function runs(doc) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren(...doc.runs.map((run) => {
    const row = ohlcv.el("tr");
    const state = ohlcv.el("td");
    state.append(ohlcv.badge(run.state));
    const link = ohlcv.el("td");
    link.append(ohlcv.link(`run?dag_id=ohlcv_indexer&run_id=${encodeURIComponent(run.run_id)}`, run.run_id));
    row.append(ohlcv.el("td", (run.finished_at || "").replace("T", " ")), ohlcv.el("td", run.as_of), state);
    for (const name of ["duration_seconds", "vendor_calls", "appended", "handed_on", "deferred", "repaired", "failed"]) {
      row.append(ohlcv.el("td", ohlcv.number(run[name]), { class: "num" }));
    }
    row.append(link);
    return row;
  }));
  drawRuns(doc.runs);
}

function drawRuns(list) {
  const node = document.getElementById("runs-chart");
  if (runsChart) runsChart.remove();
  runsChart = LightweightCharts.createChart(node, {
    autoSize: true,
    layout: { attributionLogo: true },
    rightPriceScale: { visible: true },
    leftPriceScale: { visible: true },
    timeScale: { timeVisible: true },
  });
  const seen = new Set();
  const points = list
    .map((run) => ({ time: Math.floor(Date.parse(run.finished_at) / 1000), run }))
    .sort((a, b) => a.time - b.time)
    .filter((point) => !seen.has(point.time) && seen.add(point.time));
  const duration = runsChart.addSeries(LightweightCharts.LineSeries, { title: "took s", color: "#2b6cb0", priceScaleId: "right" });
  duration.setData(points.map(({ time, run }) => ({ time, value: Number(run.duration_seconds) || 0 })));
  const calls = runsChart.addSeries(LightweightCharts.HistogramSeries, { title: "vendor calls", color: "#a0aec0", priceScaleId: "left" });
  calls.setData(points.map(({ time, run }) => ({ time, value: Number(run.vendor_calls) || 0 })));
  runsChart.timeScale().fitContent();
  node.dataset.runs = String(points.length);
}

document.getElementById("refresh").addEventListener("click", load);
document.getElementById("open-ticker").addEventListener("submit", (event) => {
  event.preventDefault();
  const code = document.getElementById("ticker-code").value.trim().toUpperCase();
  if (code) window.location.href = `ticker?code=${encodeURIComponent(code)}`;
});
load();
