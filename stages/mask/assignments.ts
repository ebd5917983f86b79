import { REDACTED } from './types.js';

/*
 * A separator (`:` or `=`) preceded by an identifier of up to 64 characters, optional closing
 * quote (possibly JSON-escaped) and a little whitespace. The identifier is captured inside a
 * lookbehind placed after the separator, so the regex scans for the separator character first and
 * the match is the separator alone: a non-secret assignment consumes nothing and cannot hide a
 * later one (`a=password=x`).
 */
const SEPARATOR = /[:=](?<=(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]{1,64})(?:\\?["'])?[ \t]{0,16}[:=])/g;

/*
 * The value after a secret key's separator, matched sticky right after it: whitespace and an
 * optional HTTP auth scheme (both kept, groups 1–2), then one of: a double-, single- or
 * JSON-escaped-quoted string (groups 3–5, quotes kept); an opening quote never closed (group 6,
 * kept: a truncated message still hides its tail up to whitespace); a placeholder left by a
 * pattern (`[CARD ****1111]` has a space); a bare word. Quoted bodies exclude their own quote, so
 * each scan stops at the next quote character.
 */
const VALUE =
  /([ \t]{0,16})((?:Basic|Bearer|Digest|Negotiate|Token|basic|bearer|BASIC|BEARER)[ \t]+)?(?:(")(?:[^"\\]|\\[\s\S])*"|(')(?:[^'\\]|\\[\s\S])*'|(\\")[^"]*?\\"|(["'])[^\s"',;&<>(){}]*|\[[A-Z][A-Z_ *0-9]{0,30}\]|[^\s"',;&<>(){}]+)/y;

/**
 * Returns a function masking the values of secret-named assignments inside free text:
 * `password=hunter2`, `api_key: abc`, `"token":"abc"`, `{\"secret\":\"x\"}`, `--password=x`,
 * `Authorization: Basic abc` (→ `Authorization: Basic [REDACTED]`). This is the object-key rule
 * applied to text, so the same `keys` (and `isSecretKey`) decide; quotes and an auth scheme are
 * kept, the value becomes `[REDACTED]`. A bare value ends at whitespace or `,;&"'<>(){}`.
 */
export function createAssignmentMasker(isSecretKey: (key: string) => boolean): (text: string) => string {
  // Own copies: global/sticky regexes carry lastIndex state.
  const separator = new RegExp(SEPARATOR.source, 'g');
  const value = new RegExp(VALUE.source, 'y');
  return (text) => {
    if (!text.includes(':') && !text.includes('=')) return text;
    separator.lastIndex = 0;
    let out = '';
    let copied = 0;
    for (let m = separator.exec(text); m !== null; m = separator.exec(text)) {
      if (!isSecretKey(m[1]!)) continue;
      const valueStart = m.index + 1;
      value.lastIndex = valueStart;
      const v = value.exec(text);
      if (v === null) continue;
      const open = v[3] ?? v[4] ?? v[5] ?? v[6] ?? '';
      const close = v[6] === undefined ? open : '';
      out += text.slice(copied, valueStart) + v[1] + (v[2] ?? '') + open + REDACTED + close;
      copied = value.lastIndex;
      separator.lastIndex = copied;
    }
    return copied === 0 ? text : out + text.slice(copied);
  };
}
