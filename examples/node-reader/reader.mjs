// A reader of OHLCV_STR version 1, written from docs/ohlcv-str.md alone.
//
//   OHLCV_REDIS_URL=redis://127.0.0.1:6379/0 node reader.mjs ticker:005930 ticker:KS11
//   node reader.mjs --universe 2026-11-20 [KOSDAQ]     # the codes listed on a session
//   node reader.mjs --revision 12 005930 000660        # the values as revision 12 saw them
//
// prints one JSON line per key (dates as ISO strings, NaN as null, int64 beyond 2^53 as a
// string). As a module, decodeValue() turns one value into typed arrays; universe(),
// revision() and readPinned() read the keys beside the values (OHLCV_KEY_PREFIX is honoured).
import { pathToFileURL } from "node:url";

import { decode } from "@msgpack/msgpack";
import { createClient, RESP_TYPES } from "redis";

export const FORMAT = "OHLCV_STR";
export const VERSION = 1;
export const COLUMNS = ["Date", "Open", "High", "Low", "Close", "Volume", "Change"];
export const FIRST_DAY = -25567; // 1900-01-01
export const LAST_DAY = 84005; // 2199-12-31
const ITEM_SIZE = { "<i4": 4, "<i8": 8, "<f8": 8 };
const DAY_MS = 86_400_000;

/** The value breaks a rule of the specification. */
export class BadValue extends Error {}

function isInteger(value) {
  // @msgpack/msgpack gives 1 for both the integer 1 and the float 1.0; booleans stay booleans
  return typeof value === "number" && Number.isInteger(value);
}

/** One column's bytes as a typed array, read little-endian whatever the host's byte order. */
function readColumn(bytes, dtype, rows) {
  // a DataView, not new Int32Array(bytes.buffer): typed arrays use the host's byte order and
  // need an aligned offset, and a bin inside a MessagePack buffer starts anywhere
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "<i4") {
    const out = new Int32Array(rows);
    for (let i = 0; i < rows; i++) out[i] = view.getInt32(i * 4, true);
    return out;
  }
  if (dtype === "<i8") {
    const out = new BigInt64Array(rows); // int64 does not fit a Number beyond 2^53
    for (let i = 0; i < rows; i++) out[i] = view.getBigInt64(i * 8, true);
    return out;
  }
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/** Decode one OHLCV_STR value (a Buffer or Uint8Array); throw BadValue if it is not one. */
export function decodeValue(bytes) {
  let doc;
  try {
    doc = decode(bytes); // rejects trailing bytes: the value is one bare MessagePack object
  } catch (error) {
    throw new BadValue(`not an OHLCV_STR value: ${error.message}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc) || doc instanceof Uint8Array) {
    throw new BadValue("not an OHLCV_STR value: not a MessagePack map");
  }
  // Key order is not checked, and keys this reader does not know are ignored.
  const { format, version, rows, source, columns, dtypes, data } = doc;
  if (format !== FORMAT) throw new BadValue("not an OHLCV_STR value: format is not the str OHLCV_STR");
  if (!isInteger(version) || version !== VERSION) {
    throw new BadValue(`unsupported OHLCV_STR version ${JSON.stringify(version)}`);
  }
  if (!isInteger(rows) || rows < 1) throw new BadValue(`rows must be an integer >= 1, got ${JSON.stringify(rows)}`);
  if (typeof source !== "string") throw new BadValue("source must be a str");
  if (!Array.isArray(columns) || columns.length !== 7 || columns.some((name, i) => name !== COLUMNS[i])) {
    throw new BadValue(`columns must be ${COLUMNS.join(", ")}`);
  }
  if (!Array.isArray(dtypes) || !Array.isArray(data) || dtypes.length !== 7 || data.length !== 7) {
    throw new BadValue("expected 7 dtypes and 7 columns of data");
  }
  if (dtypes[0] !== "<i4") throw new BadValue("the Date column must be <i4");
  if (dtypes[6] !== "<f8") throw new BadValue("the Change column must be <f8");
  const values = {};
  COLUMNS.forEach((name, i) => {
    if (typeof dtypes[i] !== "string" || !Object.hasOwn(ITEM_SIZE, dtypes[i])) {
      throw new BadValue(`column ${name} has unsupported type ${JSON.stringify(dtypes[i])}`);
    }
    const size = ITEM_SIZE[dtypes[i]];
    if (!(data[i] instanceof Uint8Array)) throw new BadValue(`column ${name} is not a MessagePack bin`);
    if (data[i].byteLength !== rows * size) throw new BadValue(`column ${name} is truncated`);
    values[name] = readColumn(data[i], dtypes[i], rows);
  });
  const days = values.Date;
  for (let i = 1; i < rows; i++) {
    if (days[i] <= days[i - 1]) throw new BadValue("dates are not strictly increasing");
  }
  if (days[0] < FIRST_DAY || days[rows - 1] > LAST_DAY) {
    throw new BadValue(`dates must lie from 1900-01-01 to 2199-12-31, found days ${days[0]} to ${days[rows - 1]}`);
  }
  delete values.Date;
  return { format, version, rows, source, dtypes: [...dtypes], days, columns: values };
}

/** Days since 1970-01-01 as an ISO date (the session's calendar date, no time zone). */
export function isoDate(day) {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

function plain(value) {
  if (typeof value === "bigint") {
    const number = Number(value);
    return Number.isSafeInteger(number) ? number : value.toString();
  }
  return Number.isNaN(value) ? null : value;
}

/** A decoded value as plain JSON: ISO dates, NaN as null, unsafe int64 as strings. */
export function toJSON(decoded) {
  const columns = {};
  for (const [name, values] of Object.entries(decoded.columns)) columns[name] = Array.from(values, plain);
  const { format, version, rows, source, dtypes } = decoded;
  return { format, version, rows, source, dtypes, dates: Array.from(decoded.days, isoDate), columns };
}

// --- the keys beside the values (docs/research.md, "... in Redis"): universe and revisions ---

const text = (reply) => (reply === null || reply === undefined ? null : reply.toString());
const dayNumber = (iso) => Date.parse(`${iso}T00:00:00Z`) / DAY_MS;

/** The codes listed on `session` (ISO) from the universe record: `{session, market, exact,
 * markets: {code: market}}`. Exact when the session's table is recorded; throws for a session
 * after the newest recorded one. */
export async function universe(redis, session, { market = "KRX", prefix = "" } = {}) {
  const newest = text((await redis.sendCommand(["ZRANGE", `${prefix}ohlcv:universe:sessions`, "-1", "-1"]))[0]);
  if (newest === null) throw new Error("no market table is recorded yet");
  if (session > newest) throw new Error(`the universe is recorded through ${newest}; ${session} is not recorded yet`);
  const exact = (await redis.sendCommand(["ZSCORE", `${prefix}ohlcv:universe:sessions`, session])) !== null;
  const flat = await redis.sendCommand(["HGETALL", `${prefix}ohlcv:universe`]);
  const markets = {};
  for (let i = 0; i < flat.length; i += 2) {
    // each span is [first, last or null while still listed, market]; ISO dates compare as strings
    for (const [first, last, board] of JSON.parse(text(flat[i + 1]))) {
      if (first <= session && (last === null || session <= last) && (market === "KRX" || board === market)) {
        markets[text(flat[i])] = board;
      }
    }
  }
  const codes = Object.keys(markets).sort();
  return { session, market, exact, markets: Object.fromEntries(codes.map((code) => [code, markets[code]])) };
}

/** The record of revision `id` (the current one when `id` is omitted), or null. */
export async function revision(redis, id = null, { prefix = "" } = {}) {
  const wanted = id ?? text(await redis.get(`${prefix}ohlcv:revision`));
  if (wanted === null) return null;
  const record = await redis.sendCommand(["HGET", `${prefix}ohlcv:revisions`, String(wanted)]);
  return record === null ? null : JSON.parse(text(record));
}

/** `ticker:{code}` as revision `id` saw it: the first value kept at or after the revision
 * (`ohlcv:versions:{code}`, members `{time}:{sha1}` scored by revision), else the current
 * value; cut at the revision's cut, with the Volumes settled after it put back. */
export async function readPinned(redis, code, id, { prefix = "" } = {}) {
  const record = await revision(redis, id, { prefix });
  if (record === null) throw new Error(`no run published revision ${id}`);
  if (new Date().toISOString().slice(0, 10) > record.expires) throw new Error(`revision ${id} expired on ${record.expires}`);
  // the current value first, then whether a write replaced it since the revision: a repair
  // between the two reads is seen in the second, and the value it kept is read instead
  let bytes = await redis.get(`${prefix}ticker:${code}`);
  const kept = await redis.sendCommand([
    "ZRANGEBYSCORE", `${prefix}ohlcv:versions:${code}`, String(record.id), "+inf", "WITHSCORES", "LIMIT", "0", "1",
  ]);
  const replacedAfter = kept.length ? Number(text(kept[1])) : null;
  if (kept.length) {
    const key = `${prefix}ohlcv:version:${code}:${text(kept[0]).split(":").pop()}`;
    bytes = await redis.get(key);
    if (bytes === null) throw new Error(`${key} is gone: revision ${id} has expired`);
  }
  if (bytes === null) throw new Error(`${code} is not cached, and revision ${id} holds no value of it`);
  const value = decodeValue(bytes);
  let rows = value.rows;
  while (rows > 0 && value.days[rows - 1] > dayNumber(record.cut)) rows -= 1;
  const columns = {};
  for (const [name, values] of Object.entries(value.columns)) columns[name] = values.slice(0, rows);
  for (const session of record.preliminary ?? []) {
    const settled = text(await redis.sendCommand(["HGET", `${prefix}ohlcv:settled:${session}`, code]));
    if (settled === null) continue;
    const [volume, after] = settled.split(" ");
    if (Number(after) < record.id || (replacedAfter !== null && Number(after) > replacedAfter)) continue;
    const row = Array.prototype.indexOf.call(value.days.subarray(0, rows), dayNumber(session));
    if (row >= 0) columns.Volume[row] = typeof columns.Volume[row] === "bigint" ? BigInt(volume) : Number(volume);
  }
  return { ...value, rows, days: value.days.slice(0, rows), columns };
}

/** A connected node-redis client whose string replies are Buffers: never read a value as a JS string. */
export async function connect(url = process.env.OHLCV_REDIS_URL ?? "redis://127.0.0.1:6379/0") {
  const client = await createClient({ url }).connect();
  return client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
}

async function main(args) {
  const redis = await connect();
  const prefix = process.env.OHLCV_KEY_PREFIX ?? "";
  try {
    if (args[0] === "--universe") {
      const found = await universe(redis, args[1], { market: args[2] ?? "KRX", prefix });
      process.stdout.write(`${JSON.stringify(found)}\n`);
      return;
    }
    if (args[0] === "--revision") {
      for (const code of args.slice(2)) {
        const pinned = await readPinned(redis, code, Number(args[1]), { prefix });
        process.stdout.write(`${JSON.stringify({ code, revision: Number(args[1]), ...toJSON(pinned) })}\n`);
      }
      return;
    }
    for (const key of args) {
      const bytes = await redis.get(key);
      const line = bytes === null ? { key, missing: true } : { key, ...toJSON(decodeValue(bytes)) };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  } finally {
    redis.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(error.message);
    process.exitCode = 1;
  });
}
