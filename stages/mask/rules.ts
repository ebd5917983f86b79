import { DEFAULT_KEYS, normalizeKey } from './keys.js';
import { DEFAULT_PATTERNS } from './patterns.js';
import { compileTemplate } from './template.js';
import type { MaskPattern, MaskRules } from './types.js';

export { createMasker, MAX_MASK_DEPTH, type MaskableEvent } from './masker.js';
export { type MaskPattern, type MaskRules, REDACTED } from './types.js';

/**
 * The built-in rules: secret key names (see `keys.ts` for the list and why it is greedy) and the
 * string patterns (see `patterns.ts`). Frozen, because every masker built from defaults shares it.
 */
export const DEFAULT_MASK_RULES: MaskRules = Object.freeze({
  keys: Object.freeze([...DEFAULT_KEYS]) as string[],
  patterns: Object.freeze(DEFAULT_PATTERNS.map((p) => Object.freeze({ ...p }))) as MaskPattern[],
});

/** Flags accepted in a rules file; `g` is implied and `y` would make the scan stop at the first non-match. */
const ALLOWED_FLAGS = /^[gimsuvd]*$/;
const FILE_FIELDS = new Set(['keys', 'patterns']);
const PATTERN_FIELDS = new Set(['name', 'regex', 'flags', 'replacement']);

/**
 * Builds rules from the defaults plus extra key names (e.g. from `MASK_EXTRA_KEYS`) plus an optional
 * parsed JSON rules file `{"keys": string[], "patterns": [{"name", "regex", "flags"?, "replacement"}]}`.
 * Defaults are always kept: configuration can only mask more. Custom patterns run after the
 * built-in ones; `replacement` is a template (`$1`..`$99`, `$&`, `$$`) and should not itself match
 * the regex, or masking stops being idempotent. Throws an Error naming the offending entry on any
 * invalid shape, unknown field, bad regex or flag, regex matching the empty string, duplicate
 * pattern name, or replacement referencing a missing group — so a bad file stops startup.
 */
export function buildMaskRules(extraKeys: string[], file?: unknown): MaskRules {
  const keys = [...DEFAULT_MASK_RULES.keys];
  const patterns = [...DEFAULT_MASK_RULES.patterns];
  addKeys(keys, extraKeys, 'extra keys');
  if (file !== undefined) {
    if (!isPlainObject(file)) fail('rules file must be a JSON object');
    for (const field of Object.keys(file)) {
      if (!FILE_FIELDS.has(field))
        fail(`rules file has unknown field "${field}" (expected "keys", "patterns")`);
    }
    if (file['keys'] !== undefined) addKeys(keys, file['keys'], 'rules file "keys"');
    if (file['patterns'] !== undefined) {
      if (!Array.isArray(file['patterns'])) fail('rules file "patterns" must be an array');
      const names = new Set(patterns.map((p) => p.name));
      file['patterns'].forEach((entry: unknown, i: number) => {
        const pattern = parsePattern(entry, `rules file "patterns"[${i}]`);
        if (names.has(pattern.name))
          fail(`rules file "patterns"[${i}]: duplicate pattern name "${pattern.name}"`);
        names.add(pattern.name);
        patterns.push(pattern);
      });
    }
  }
  return { keys, patterns };
}

/** Appends normalized, de-duplicated keys; a key that normalizes to '' would match every key. */
function addKeys(keys: string[], input: unknown, where: string): void {
  if (!Array.isArray(input)) fail(`${where} must be an array of strings`);
  input.forEach((raw: unknown, i: number) => {
    if (typeof raw !== 'string') fail(`${where}[${i}] must be a string`);
    if (raw.trim() === '') return;
    const key = normalizeKey(raw);
    if (key === '') fail(`${where}[${i}] ("${raw}") has no ASCII letters or digits`);
    if (!keys.includes(key)) keys.push(key);
  });
}

function parsePattern(entry: unknown, where: string): MaskPattern {
  if (!isPlainObject(entry)) fail(`${where} must be an object`);
  for (const field of Object.keys(entry)) {
    if (!PATTERN_FIELDS.has(field)) fail(`${where} has unknown field "${field}"`);
  }
  const { name, regex: source, flags = '', replacement } = entry;
  if (typeof name !== 'string' || name.trim() === '') fail(`${where}: "name" must be a non-empty string`);
  const at = `${where} ("${name}")`;
  if (typeof source !== 'string' || source === '') fail(`${at}: "regex" must be a non-empty string`);
  if (typeof flags !== 'string' || !ALLOWED_FLAGS.test(flags)) {
    fail(`${at}: "flags" must be a string of g, i, m, s, u, v, d`);
  }
  if (typeof replacement !== 'string') fail(`${at}: "replacement" must be a string`);
  let regex: RegExp;
  try {
    regex = new RegExp(source, flags.includes('g') ? flags : flags + 'g');
  } catch (err) {
    fail(`${at}: invalid regex: ${(err as Error).message}`);
  }
  if (new RegExp(source, flags.replace('g', '')).test('')) {
    fail(`${at}: regex matches the empty string`);
  }
  const groupCount = new RegExp(`(?:${source})|`, flags.replace('g', '')).exec('')!.length - 1;
  let replace: MaskPattern['replace'];
  try {
    replace = compileTemplate(replacement, groupCount);
  } catch (err) {
    fail(`${at}: ${(err as Error).message}`);
  }
  return { name, regex, replace };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(message: string): never {
  throw new Error(`Invalid mask rules: ${message}`);
}
