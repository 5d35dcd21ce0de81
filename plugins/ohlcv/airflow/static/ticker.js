// A ticker's cached history as candles with volume, its corporate actions marked, and where it
// stands. Data: api/ticker/{code} (ohlcv/overview/ticker.py). ?code=005930, optionally
// &from=2026-01-02&to=2026-03-31 to open on one stretch.
"use strict";

let chart = null;

async function load() {
  const code = (ohlcv.params.get("code") || "").trim();
  if (!code) {
    ohlcv.fail("cards", new Error("give a ticker: ticker?code=005930"));
    return;
  }
  let doc;
  try {
    doc = await ohlcv.json(`api/ticker/${encodeURIComponent(code)}`);
  } catch (error) {
    ohlcv.fail("cards", error);
    return;
  }
  document.title = `OHLCV ${doc.code}`;
  document.getElementById("title").textContent = `${doc.code} (${doc.market})`;
  document.getElementById("state").replaceChildren(ohlcv.badge(doc.state));
  document.getElementById("reason").textContent = [doc.reason, doc.since && `since ${doc.since}`].filter(Boolean).join(", ");
  cards(doc);
  draw(doc);
  ledger(doc);
  document.body.dataset.loaded = "true";
}

function cards(doc) {
  const card = ohlcv.card;
  const items = [
    card("ticker:lastUpdateAt", doc.last_update_at, "last-update"),
    card("sessions cached", ohlcv.number(doc.rows), "rows"),
    card("first session", doc.candles.time[0], "first"),
    card("source", doc.source || "-", "source"),
    card("preliminary sessions", doc.preliminary.join(" ") || "none", "preliminary"),
  ];
  if (doc.delisted) items.push(card("delisted", doc.delisted.delisted || `after ${doc.delisted.last}`, "delisted"));
  if (doc.unreadable) items.push(card("the cached value cannot be read", doc.unreadable, "unreadable"));
  document.getElementById("cards").replaceChildren(...items);
}

function draw(doc) {
  const node = document.getElementById("chart");
  if (chart) chart.remove();
  chart = LightweightCharts.createChart(node, {
    autoSize: true,
    layout: { attributionLogo: true },
    // small enough that decades of sessions fit the width when the whole history is shown
    timeScale: { rightOffset: 3, minBarSpacing: 0.001 },
  });
  const whole = doc.candles.close.every((price) => Number.isInteger(price));  // won, not index points
  const candles = chart.addSeries(LightweightCharts.CandlestickSeries, {
    upColor: "#c53030", downColor: "#2b6cb0", borderVisible: false, wickUpColor: "#c53030", wickDownColor: "#2b6cb0",
    priceFormat: whole ? { type: "price", precision: 0, minMove: 1 } : { type: "price", precision: 2, minMove: 0.01 },
  });
  const volume = chart.addSeries(LightweightCharts.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "", color: "#a0aec0" });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
  const rows = doc.candles;
  const bars = [];
  const volumes = [];
  for (let i = 0; i < rows.time.length; i++) {
    const time = rows.time[i];
    // a trading halt (Open = High = Low = 0): a gap in the candles, not a fall to zero
    bars.push(rows.open[i] > 0 ? { time, open: rows.open[i], high: rows.high[i], low: rows.low[i], close: rows.close[i] } : { time });
    volumes.push({ time, value: rows.volume[i] });
  }
  candles.setData(bars);
  volume.setData(volumes);
  const markers = doc.actions
    .filter((action) => action.session && rows.time.length && action.session >= rows.time[0])
    .map((action) => ({
      time: action.session,
      position: "aboveBar",
      color: action.action === "repaired" ? "#553c9a" : "#b7791f",
      shape: "arrowDown",
      text: `${action.action}${action.ratio ? ` ×${action.ratio.toPrecision(3)}` : ""}`,
    }))
    .sort((a, b) => a.time.localeCompare(b.time));
  LightweightCharts.createSeriesMarkers(candles, markers);
  const show = (from, to) => {
    const inside = rows.time.filter((day) => (!from || day >= from) && (!to || day <= to)).length;
    if (from || to) chart.timeScale().setVisibleRange({ from: from || rows.time[0], to: to || rows.time[rows.time.length - 1] });
    else chart.timeScale().fitContent();
    const label = document.getElementById("candles");
    label.textContent = `${inside.toLocaleString("en-US")} sessions shown${from ? ` from ${from}` : ""}${to ? ` to ${to}` : ""}`;
    label.dataset.candles = String(inside);
    node.dataset.candles = String(inside);
  };
  const last = rows.time[rows.time.length - 1];
  document.getElementById("whole").onclick = () => show(null, null);
  document.getElementById("year").onclick = () => {
    const start = new Date(`${last}T00:00:00Z`);
    start.setUTCFullYear(start.getUTCFullYear() - 1);
    show(start.toISOString().slice(0, 10), null);
  };
  node.dataset.markers = String(markers.length);
  if (!rows.time.length) {
    document.getElementById("candles").textContent = "nothing cached";
    return;
  }
  show(ohlcv.params.get("from"), ohlcv.params.get("to"));
}

function ledger(doc) {
  const body = document.querySelector("#ledger tbody");
  if (!doc.actions.length) {
    body.replaceChildren(ohlcv.el("tr", "", {}));
    body.firstChild.append(ohlcv.el("td", "no continuity break or repair recorded", { colspan: "9", class: "muted" }));
    return;
  }
  body.replaceChildren(...doc.actions.map((action) => {
    const row = ohlcv.el("tr");
    const run = ohlcv.el("td");
    run.append(ohlcv.link(`run?dag_id=ohlcv_indexer&run_id=${encodeURIComponent(action.run_id)}`, action.run_id));
    row.append(ohlcv.el("td", action.session), ohlcv.el("td", action.action), ohlcv.el("td", action.found_by),
      ohlcv.el("td", ohlcv.number(action.cached_close), { class: "num" }), ohlcv.el("td", ohlcv.number(action.base_price), { class: "num" }),
      ohlcv.el("td", action.ratio === null ? "" : action.ratio.toPrecision(4), { class: "num" }), run,
      ohlcv.el("td", action.recorded_at.replace("T", " ")), ohlcv.el("td", action.reason, { class: "reason" }));
    return row;
  }));
}

load();
