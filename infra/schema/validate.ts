import { isIP } from 'node:net';
import { Ajv, type ErrorObject } from 'ajv';
import * as formatsModule from 'ajv-formats';
import { fitsUtf8 } from '../utf8.js';
import { EventInput, LIMITS } from './event.js';

/** One problem with one field of one event, as reported in a 400 body. */
export interface ValidationIssue {
  /** Position in the bulk `events` array; absent for single-event requests. */
  index?: number;
  /** JSON pointer into the event, e.g. `/metadata/a/b`. Empty for the event itself. */
  path: string;
  message: string;
}

/** The ajv instance shared by every schema derived from `infra/schema`. */
export function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false });
  // ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
  const addFormats = formatsModule.default as unknown as (ajv: Ajv, formats: string[]) => Ajv;
  addFormats(ajv, ['uuid', 'date-time', 'date', 'time', 'uri', 'email']);
  // PostgreSQL's inet has no IPv6 zone ids (`fe80::1%eth0`): accepting one would fail the COPY
  // after the 202, so it is rejected here.
  ajv.addFormat('ip', { type: 'string', validate: (s: string) => isIP(s) !== 0 && !s.includes('%') });
  return ajv;
}

const ajv = createAjv();
const checkEvent = ajv.compile<EventInput>(EventInput);

/** Nesting depth of `value`, exploring no further than one level past `limit`. */
function depthOf(value: unknown, limit: number, depth = 1): number {
  if (value === null || typeof value !== 'object') return depth - 1;
  if (depth > limit) return depth;
  let max = depth;
  for (const child of Object.values(value as Record<string, unknown>)) {
    if (child !== null && typeof child === 'object') max = Math.max(max, depthOf(child, limit, depth + 1));
    if (max > limit) break;
  }
  return max;
}

/**
 * The accepted `date-time` forms (ajv-formats: `T`, `t` or whitespace; `Z` or an offset of
 * `hh`, `hhmm` or `hh:mm`; a leap second) parsed without `Date.parse`, which rejects some of them.
 */
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt\s](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2})(?::?(\d{2}))?)$/;
/** PostgreSQL parses no year 0 (1 BC) and a partition or cursor needs a four-digit year. */
const EARLIEST_MS = new Date(0).setUTCFullYear(1, 0, 1); // 0001-01-01T00:00:00Z
const LATEST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * An RFC 3339 timestamp converted to UTC, keeping every fractional digit (PostgreSQL keeps
 * microseconds; a JS Date only milliseconds). PostgreSQL rejects offsets beyond ±15:59 that RFC
 * 3339 allows, so everything that reaches the database is normalized to `Z` first. Undefined for
 * an unparsable value or an instant outside years 0001–9999 (UTC).
 */
export function utcTimestamp(value: string): { iso: string; ms: number } | undefined {
  const m = TIMESTAMP.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, fraction = '', sign, oh = '0', om = '0'] = m;
  const offsetMin = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi) - offsetMin, Number(s), 0);
  const ms = date.getTime() + Number(fraction.slice(1, 4).padEnd(3, '0'));
  if (!Number.isFinite(ms) || ms < EARLIEST_MS || ms > LATEST_MS) return undefined;
  return { iso: `${date.toISOString().slice(0, 19)}${fraction}Z`, ms };
}

/** U+0000 or a lone UTF-16 surrogate: PostgreSQL text cannot hold the first and turns the second into U+FFFD. */
const UNSTORABLE = /\u0000|\p{Cs}/u;

/**
 * JSON pointer of the first string or key PostgreSQL cannot store exactly. Accepting one would
 * either fail the COPY after the 202 (NUL) or store something other than what was acknowledged.
 */
function unstorablePath(value: unknown): string | undefined {
  const at = unstorableKeys(value);
  return at?.map((key) => `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** The keys leading to the first unstorable string or key (innermost last); undefined if none. */
function unstorableKeys(value: unknown): string[] | undefined {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? [] : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Object.entries(value)) {
    if (UNSTORABLE.test(key)) return [key];
    const below = unstorableKeys(child);
    if (below !== undefined) return [key, ...below];
  }
  return undefined;
}

function fromAjv(e: ErrorObject): ValidationIssue {
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    return { path: `${e.instancePath}/${extra}`, message: 'unknown field' };
  }
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    return { path: `${e.instancePath}/${missing}`, message: 'is required' };
  }
  return { path: e.instancePath, message: e.message ?? 'is invalid' };
}

/**
 * Validates one client event: the schema, then what JSON Schema cannot express (serialized size,
 * nesting depth, `occurred_at` skew). `now` is injectable for tests.
 */
export function validateEvent(input: unknown, now = Date.now()): ValidationIssue[] {
  return checkEventInput(input, now).issues;
}

/**
 * `validateEvent`, also returning the event's JSON (`JSON.stringify(input)`) when it got as far
 * as serializing it for the size check, which it does for every valid event: ingest builds the
 * queue body from it instead of serializing the event a second time.
 */
export function checkEventInput(
  input: unknown,
  now = Date.now(),
): { issues: ValidationIssue[]; json?: string } {
  if (!checkEvent(input)) {
    // Ajv reports a failed anyOf branch by branch; keep one issue per path and keyword.
    const seen = new Set<string>();
    const issues = (checkEvent.errors ?? []).map(fromAjv).filter((i) => {
      const key = `${i.path}|${i.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return { issues };
  }
  const issues: ValidationIssue[] = [];
  let json: string | undefined;
  for (const field of ['before', 'after', 'metadata'] as const) {
    const value = input[field];
    if (value !== undefined && depthOf(value, LIMITS.objectDepth) > LIMITS.objectDepth) {
      issues.push({ path: `/${field}`, message: `nested deeper than ${LIMITS.objectDepth} levels` });
    }
  }
  // Only walk and serialize what is known to be shallow: a deep enough object overflows the stack.
  if (issues.length === 0) {
    json = JSON.stringify(input);
    if (!fitsUtf8(json, LIMITS.eventBytes)) {
      const size = Buffer.byteLength(json);
      issues.push({ path: '', message: `event is ${size} bytes; the limit is ${LIMITS.eventBytes}` });
    }
    // JSON.stringify writes NUL and every lone surrogate as a `\u` escape (well-formed pairs and
    // other text stay as they are), so JSON without one holds neither and needs no walk: the walk
    // was a tenth of the ingest thread's time for 500-event requests.
    const bad = json.includes('\\u') ? unstorablePath(input) : undefined;
    if (bad !== undefined) {
      issues.push({ path: bad, message: 'must be well-formed Unicode without NUL characters' });
    }
  }
  if (input.occurred_at !== undefined) {
    const t = utcTimestamp(input.occurred_at)?.ms;
    if (t === undefined) {
      issues.push({ path: '/occurred_at', message: 'is not a valid timestamp in years 0001 to 9999' });
    } else if (t > now + LIMITS.futureSkewMs) {
      issues.push({ path: '/occurred_at', message: 'is more than 24 h in the future' });
    }
  }
  return { issues, json };
}
