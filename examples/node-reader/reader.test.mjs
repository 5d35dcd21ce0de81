// node --test: the reader against values built here from the spec, and against a Redis
// filled by the project (OHLCV_REDIS_URL; those tests are skipped when it is not set).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { encode } from "@msgpack/msgpack";
import { BadValue, COLUMNS, connect, decodeValue, isoDate, readPinned, revision, universe } from "./reader.mjs";

const I32_MAX = 2 ** 31 - 1;

/** A column's values comparable across dtypes: a slice may be <i4 where its history is <i8. */
const comparable = (values) => Array.from(values, (v) => (Number.isNaN(v) ? "NaN" : String(v)));

/** Little-endian column bytes, built by hand: the reader must not depend on the host. */
function bytes(dtype, values) {
  const size = dtype === "<i4" ? 4 : 8;
  const view = new DataView(new ArrayBuffer(values.length * size));
  values.forEach((value, i) => {
    if (dtype === "<i4") view.setInt32(i * size, value, true);
    else if (dtype === "<i8") view.setBigInt64(i * size, BigInt(value), true);
    else view.setFloat64(i * size, value, true);
  });
  return new Uint8Array(view.buffer);
}

/** A valid value of three sessions, with ``change`` applied to its map first. */
function value(change = () => {}) {
  const dtypes = ["<i4", "<i4", "<i8", "<f8", "<i4", "<i8", "<f8"];
  const columns = [
    [19724, 19725, 19726], // 2024-01-02 .. 2024-01-04
    [78200, 78500, 77000],
    [79000, 79100, 78000],
    [77500.5, 77900.25, 76600.75],
    [78500, 77000, 76600],
    [2n ** 62n, 9007199254740993n, 12n], // beyond 2^53: only BigInt holds them exactly
    [NaN, 77000 / 78500 - 1, 76600 / 77000 - 1],
  ];
  const doc = {
    format: "OHLCV_STR",
    version: 1,
    rows: 3,
    source: "test",
    columns: [...COLUMNS],
    dtypes,
    data: columns.map((values, i) => bytes(dtypes[i], values)),
  };
  change(doc);
  return encode(doc);
}

describe("decodeValue", () => {
  test("reads each dtype little-endian, <i8 as BigInt", () => {
    const decoded = decodeValue(value());
    assert.equal(decoded.rows, 3);
    assert.equal(decoded.source, "test");
    assert.deepEqual(Array.from(decoded.days, isoDate), ["2024-01-02", "2024-01-03", "2024-01-04"]);
    assert.deepEqual(Array.from(decoded.columns.Open), [78200, 78500, 77000]);
    assert.deepEqual(Array.from(decoded.columns.High), [79000n, 79100n, 78000n]);
    assert.deepEqual(Array.from(decoded.columns.Low), [77500.5, 77900.25, 76600.75]);
    assert.deepEqual(Array.from(decoded.columns.Volume), [2n ** 62n, 9007199254740993n, 12n]);
    assert.ok(Number.isNaN(decoded.columns.Change[0]));
    assert.equal(decoded.columns.Change[1], 77000 / 78500 - 1);
  });

  test("reads a value that starts at an odd offset of a larger buffer", () => {
    const blob = value();
    const padded = new Uint8Array(blob.length + 3);
    padded.set(blob, 3);
    assert.deepEqual(decodeValue(padded.subarray(3)).columns.Close, decodeValue(blob).columns.Close);
  });

  test("ignores keys it does not know, in any order", () => {
    const reordered = value((doc) => {
      const entries = Object.entries(doc).reverse();
      for (const key of Object.keys(doc)) delete doc[key];
      Object.assign(doc, Object.fromEntries(entries), { comment: "an optional key", extra: [1, { a: 2 }] });
    });
    assert.deepEqual(decodeValue(reordered).columns.Close, decodeValue(value()).columns.Close);
  });

  test("reads the first and last allowed dates", () => {
    const decoded = decodeValue(value((doc) => (doc.data[0] = bytes("<i4", [-25567, 0, 84005]))));
    assert.deepEqual(Array.from(decoded.days, isoDate), ["1900-01-01", "1970-01-01", "2199-12-31"]);
  });

  const broken = {
    "another format": (doc) => (doc.format = "OHLCV"),
    "format as bin": (doc) => (doc.format = new TextEncoder().encode("OHLCV_STR")),
    "version 2": (doc) => (doc.version = 2),
    "version true": (doc) => (doc.version = true),
    "version as str": (doc) => (doc.version = "1"),
    "rows 0": (doc) => {
      doc.rows = 0;
      doc.data = doc.data.map(() => new Uint8Array(0));
    },
    "rows true": (doc) => (doc.rows = true),
    "rows not matching the bytes": (doc) => (doc.rows = 2),
    "source missing": (doc) => delete doc.source,
    "data missing": (doc) => delete doc.data,
    "columns in another order": (doc) => ([doc.columns[1], doc.columns[2]] = [doc.columns[2], doc.columns[1]]),
    "a big-endian dtype": (doc) => (doc.dtypes[4] = ">i4"),
    "a float32 dtype": (doc) => (doc.dtypes[4] = "<f4"),
    "an inherited property as dtype": (doc) => (doc.dtypes[4] = "constructor"),
    "Date as <i8": (doc) => {
      doc.dtypes[0] = "<i8";
      doc.data[0] = bytes("<i8", [19724, 19725, 19726]);
    },
    "Change as <i4": (doc) => {
      doc.dtypes[6] = "<i4";
      doc.data[6] = bytes("<i4", [0, 0, 0]);
    },
    "a truncated column": (doc) => (doc.data[4] = doc.data[4].subarray(1)),
    "column bytes as str": (doc) => (doc.data[4] = "abcdefghijkl"),
    "equal dates": (doc) => (doc.data[0] = bytes("<i4", [19724, 19725, 19725])),
    "decreasing dates": (doc) => (doc.data[0] = bytes("<i4", [19725, 19724, 19726])),
    "a date before 1900": (doc) => (doc.data[0] = bytes("<i4", [-25568, 19724, 19725])),
    "a date after 2199": (doc) => (doc.data[0] = bytes("<i4", [19724, 19725, 84006])),
    "a date beyond JavaScript's Date": (doc) => (doc.data[0] = bytes("<i4", [19724, 19725, I32_MAX])),
  };
  for (const [name, change] of Object.entries(broken)) {
    test(`rejects ${name}`, () => assert.throws(() => decodeValue(value(change)), BadValue));
  }

  test("rejects anything but one bare MessagePack map", () => {
    const blob = value();
    const trailing = new Uint8Array([...blob, 0xc0]);
    const cut = blob.subarray(0, blob.length - 1);
    for (const bad of [trailing, cut, encode([1, 2]), encode("OHLCV_STR"), new Uint8Array()]) {
      assert.throws(() => decodeValue(bad), BadValue);
    }
  });
});

const url = process.env.OHLCV_REDIS_URL;

describe("the values in Redis", { skip: !url && "OHLCV_REDIS_URL is not set" }, () => {
  let redis;
  const histories = new Map();

  before(async () => {
    redis = await connect(url);
    const last = await redis.hGetAll("ticker:lastUpdateAt");
    assert.ok(Object.keys(last).length > 0, "ticker:lastUpdateAt is empty: fill Redis first (make demo)");
    for (const [code, day] of Object.entries(last)) {
      const decoded = decodeValue(await redis.get(`ticker:${code}`));
      histories.set(code.toString(), { last: day.toString(), decoded });
    }
  });

  after(() => redis?.destroy());

  test("every history ends on its ticker:lastUpdateAt session", () => {
    for (const [code, { last, decoded }] of histories) {
      assert.equal(isoDate(decoded.days[decoded.rows - 1]), last, code);
    }
  });

  test("getOHLCV_lastUpdateAt is a session every current ticker ends on", async () => {
    const published = (await redis.get("getOHLCV_lastUpdateAt")).toString();
    const ends = [...histories.values()].map(({ last }) => last);
    assert.ok(ends.includes(published));
    assert.ok(ends.every((end) => end <= published));
  });

  test("prices are finite, and Change is the close-to-close return, NaN on the first row only", () => {
    for (const [code, { decoded }] of histories) {
      const { Close, Change } = decoded.columns;
      for (const name of ["Open", "High", "Low", "Close", "Volume"]) {
        for (const price of decoded.columns[name]) {
          assert.ok(typeof price === "bigint" || Number.isFinite(price), `${code} ${name}`);
        }
      }
      for (let i = 1; i < decoded.rows; i++) {
        const expected = Number(Close[i]) / Number(Close[i - 1]) - 1;
        assert.ok(Math.abs(Change[i] - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${code} row ${i}`);
      }
    }
  });

  test("a period key holds the history's rows between its bounds, Change included", async (t) => {
    let checked = 0;
    for (const [code, { decoded: history }] of histories) {
      for (const member of await redis.sMembers(`ohlcv:periods:${code}`)) {
        const key = member.toString();
        const period = decodeValue(await redis.get(key));
        const [start, end] = key.split(":").slice(-2);
        const inside = [...history.days.keys()].filter((i) => {
          const day = isoDate(history.days[i]);
          return start <= day && day <= end;
        });
        assert.deepEqual(Array.from(period.days), inside.map((i) => history.days[i]), key);
        for (const name of COLUMNS.slice(1)) {
          const expected = inside.map((i) => history.columns[name][i]);
          assert.deepEqual(comparable(period.columns[name]), comparable(expected), `${key} ${name}`);
        }
        // the first row's Change is the return from the session before the period, if the history has one
        assert.equal(Number.isNaN(period.columns.Change[0]), inside[0] === 0, key);
        checked += 1;
      }
    }
    if (checked === 0) t.skip("no period keys: make demo writes none; a forward test's OhlcvCache.get does");
  });

  test("the current revision is the published cut, and reads every history through it", async () => {
    const current = await revision(redis);
    assert.ok(current, "no revision: an indexer run publishes one with the cut");
    assert.equal(current.cut, (await redis.get("getOHLCV_lastUpdateAt")).toString());
    assert.equal(current.count, Number((await redis.get("getOHLCV_lastUpdateCount")).toString()));
    for (const [code, { decoded }] of histories) {
      const pinned = await readPinned(redis, code, current.id);
      const rows = Array.from(decoded.days).filter((day) => isoDate(day) <= current.cut).length;
      assert.equal(pinned.rows, rows, code);
      assert.deepEqual(comparable(pinned.columns.Close), comparable(decoded.columns.Close.slice(0, rows)), code);
    }
  });

  test("the universe of the published session lists every cached stock, exactly", async () => {
    const published = (await redis.get("getOHLCV_lastUpdateAt")).toString();
    const found = await universe(redis, published);
    assert.equal(found.exact, true);
    const stocks = [...histories.keys()].filter((code) => /^[0-9]{4}[0-9A-Z][0-9K-N]$/.test(code)).sort();
    assert.deepEqual(Object.keys(found.markets), stocks);
    assert.ok(Object.values(found.markets).every((board) => ["KOSPI", "KOSDAQ", "KONEX"].includes(board)));
    await assert.rejects(universe(redis, "2199-12-31"), /not recorded yet/);
  });
});
