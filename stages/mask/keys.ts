/**
 * Default secret key names, normalized (see `MaskRules.keys`). Substring matching means `secret`
 * already covers `client_secret` and `token` covers `session_token`; they are listed anyway so the
 * list reads as the documented contract.
 *
 * Deliberately greedy: `token` also masks `token_count` and `max_tokens`, `secret` masks `secretary`,
 * `password` masks `password_changed_at`. Losing a harmless value is preferred to leaking a secret,
 * and an exception list would be a guess about names we have not seen.
 * Deliberately absent: `key` (monkey, keyboard), `pass` (passenger, compass), `auth` (author).
 */
export const DEFAULT_KEYS: readonly string[] = [
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'token',
  'apikey',
  'authorization',
  'accesskey',
  'privatekey',
  'clientsecret',
  'cookie',
  'sessiontoken',
  'creditcard',
  'cardnumber',
  'cvv',
  'cvc',
  'ssn',
];

/** Keys this short must match a whole word of the object key instead of any substring. */
const WHOLE_WORD_MAX_LENGTH = 3;
/** Bounds the per-masker memo; keys come from client data, so their variety is unbounded. */
const CACHE_LIMIT = 10_000;
const CACHEABLE_KEY_LENGTH = 256;

const NON_ALNUM = /[^a-z0-9]/g;
/** Words of an identifier: `X-Api-Key` → X, Api, Key; `userSSNLast4` → user, SSN, Last, 4. */
const WORDS = /[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g;

/** Lowercases and drops everything but ASCII letters and digits: `X-Api-Key` → `xapikey`. */
export function normalizeKey(key: string): string {
  return key.toLowerCase().replace(NON_ALNUM, '');
}

/** Returns a memoized predicate telling whether an object key names a secret under `keys`. */
export function createKeyMatcher(keys: readonly string[]): (key: string) => boolean {
  const normalized = [...new Set(keys.map(normalizeKey))].filter((k) => k.length > 0);
  const substrings = normalized.filter((k) => k.length > WHOLE_WORD_MAX_LENGTH);
  const words = new Set(normalized.filter((k) => k.length <= WHOLE_WORD_MAX_LENGTH));
  const cache = new Map<string, boolean>();

  const compute = (key: string): boolean => {
    const n = normalizeKey(key);
    for (const s of substrings) if (n.includes(s)) return true;
    if (words.size === 0) return false;
    for (const w of key.match(WORDS) ?? []) {
      const word = w.toLowerCase();
      // A plural (`ssns`) counts as the word.
      if (words.has(word) || (word.endsWith('s') && words.has(word.slice(0, -1)))) return true;
    }
    return false;
  };

  return (key) => {
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = compute(key);
      if (key.length <= CACHEABLE_KEY_LENGTH) {
        if (cache.size >= CACHE_LIMIT) cache.clear();
        cache.set(key, hit);
      }
    }
    return hit;
  };
}
