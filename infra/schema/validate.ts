import { isIP } from 'node:net';
import { Ajv, type ErrorObject } from 'ajv';
import * as formatsModule from 'ajv-formats';
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
  ajv.addFormat('ip', { type: 'string', validate: (s: string) => isIP(s) !== 0 });
  return ajv;
}

const ajv = createAjv();
const checkEvent = ajv.compile<EventInput>(EventInput);

function depthOf(value: unknown, limit: number, depth = 1): number {
  if (depth > limit || value === null || typeof value !== 'object') return depth - 1;
  let max = depth;
  for (const child of Object.values(value as Record<string, unknown>)) {
    if (child !== null && typeof child === 'object') max = Math.max(max, depthOf(child, limit, depth + 1));
    if (max > limit) break;
  }
  return max;
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
  if (!checkEvent(input)) {
    // Ajv reports a failed anyOf branch by branch; keep one issue per path and keyword.
    const seen = new Set<string>();
    return (checkEvent.errors ?? []).map(fromAjv).filter((i) => {
      const key = `${i.path}|${i.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }
  const issues: ValidationIssue[] = [];
  const size = Buffer.byteLength(JSON.stringify(input));
  if (size > LIMITS.eventBytes) {
    issues.push({ path: '', message: `event is ${size} bytes; the limit is ${LIMITS.eventBytes}` });
  }
  for (const field of ['before', 'after', 'metadata'] as const) {
    const value = input[field];
    if (value !== undefined && depthOf(value, LIMITS.objectDepth) > LIMITS.objectDepth) {
      issues.push({ path: `/${field}`, message: `nested deeper than ${LIMITS.objectDepth} levels` });
    }
  }
  if (input.occurred_at !== undefined) {
    const t = Date.parse(input.occurred_at);
    if (!Number.isFinite(t)) issues.push({ path: '/occurred_at', message: 'is not a valid timestamp' });
    else if (t > now + LIMITS.futureSkewMs) {
      issues.push({ path: '/occurred_at', message: 'is more than 24 h in the future' });
    }
  }
  return issues;
}
