import { createAssignmentMasker } from './assignments.js';
import { createKeyMatcher } from './keys.js';
import { type MaskPattern, type MaskRules, REDACTED } from './types.js';

/** The event fields that are masked; every other field passes through untouched. */
const MASKED_FIELDS = ['message', 'metadata', 'before', 'after'] as const;

/**
 * Containers nested deeper than this are replaced whole by `[REDACTED]`. Ingest already caps
 * nesting at 8; this is the fail-closed backstop for input that skipped validation, so recursion
 * stays bounded and nothing deeper is ever stored unmasked.
 */
export const MAX_MASK_DEPTH = 32;

/** Fields `createMasker` reads; any event type with (a subset of) them can be masked. */
export interface MaskableEvent {
  message?: string;
  metadata?: Record<string, unknown>;
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
}

interface CompiledPattern {
  regex: RegExp;
  replacer: (match: string, ...rest: unknown[]) => string;
  mayMatch: ((text: string) => boolean) | undefined;
}

/**
 * Returns a masker: a pure function from an event to a copy with `message`, `metadata`, `before`
 * and `after` masked (see `MaskRules`). Values under secret keys become `[REDACTED]`, whatever
 * their type; every string, at any depth and inside arrays, goes through the patterns and then
 * through the secret-assignment rule (`password=...` in text, same keys). The input is never
 * mutated; the result is a new top-level object whose unchanged sub-objects are shared with the
 * input (copy-on-write), so treat both as immutable.
 *
 * Everything is compiled here, once: the hot path does no regex construction, skips a pattern
 * whose `mayMatch` rejects the string, and memoizes key decisions.
 */
export function createMasker(rules: MaskRules): <T extends MaskableEvent>(event: T) => T {
  const isSecretKey = createKeyMatcher(rules.keys);
  const patterns = rules.patterns.map(compilePattern);
  const maskAssignments = rules.keys.length > 0 ? createAssignmentMasker(isSecretKey) : undefined;

  const maskString = (text: string): string => {
    if (text.length === 0) return text;
    let out = text;
    for (const p of patterns) {
      if (p.mayMatch !== undefined && !p.mayMatch(out)) continue;
      out = out.replace(p.regex, p.replacer);
    }
    return maskAssignments === undefined ? out : maskAssignments(out);
  };

  const maskValue = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return maskString(value);
    if (typeof value !== 'object' || value === null) return value;
    if (depth >= MAX_MASK_DEPTH) return REDACTED;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        const masked = maskValue(item, depth + 1);
        if (masked !== item) {
          copy ??= value.slice();
          copy[i] = masked;
        }
      }
      return copy ?? value;
    }
    const record = value as Record<string, unknown>;
    let copy: Record<string, unknown> | undefined;
    for (const key of Object.keys(record)) {
      const item = record[key];
      const masked = isSecretKey(key) ? REDACTED : maskValue(item, depth + 1);
      if (masked !== item) {
        copy ??= { ...record };
        // `copy` already owns `key` (spread copies own properties), so even `__proto__` is a
        // plain data write here, never a prototype change.
        copy[key] = masked;
      }
    }
    return copy ?? record;
  };

  return <T extends MaskableEvent>(event: T): T => {
    const out: Record<string, unknown> = { ...(event as Record<string, unknown>) };
    for (const field of MASKED_FIELDS) {
      const value: unknown = (event as MaskableEvent)[field];
      if (value !== undefined) out[field] = maskValue(value, 0);
    }
    return out as T;
  };
}

/** Own global copy of the regex (lastIndex is shared state) and a replacer passing groups as strings. */
function compilePattern(pattern: MaskPattern): CompiledPattern {
  const flags = pattern.regex.flags.replace(/[gy]/g, '');
  const regex = new RegExp(pattern.regex.source, flags + 'g');
  // `(?:src)|` always matches '' via the empty branch, so the result's length is 1 + group count.
  const groupCount = new RegExp(`(?:${pattern.regex.source})|`, flags).exec('')!.length - 1;
  const replacer = (match: string, ...rest: unknown[]): string => {
    // An empty match would insert the replacement between characters; it can only come from a
    // custom pattern and is never a secret.
    if (match.length === 0) return match;
    const groups: string[] = [];
    for (let i = 0; i < groupCount; i++) {
      const g = rest[i];
      groups.push(typeof g === 'string' ? g : '');
    }
    return pattern.replace(match, ...groups);
  };
  return { regex, replacer, mayMatch: pattern.mayMatch };
}
