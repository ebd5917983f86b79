/**
 * Encoding for PostgreSQL's COPY text format: tab-separated columns, `\N` for NULL, and
 * backslash escapes for the characters that would otherwise end a field or a row.
 */
const NEEDS_ESCAPE = /[\\\t\n\r]/;

export function copyField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '\\N';
  const s = typeof value === 'number' ? String(value) : value;
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  );
}

/** A bytea value given as base64: hex form `\x…`, with the backslash escaped for COPY. */
export function copyBytea(base64: string | undefined): string {
  if (base64 === undefined) return '\\N';
  return `\\\\x${Buffer.from(base64, 'base64').toString('hex')}`;
}

/**
 * A text[] of tokens drawn from a safe alphabet (base64url), so no array quoting is needed.
 * Anything else is rejected rather than escaped wrongly.
 */
export function copyTokenArray(tokens: string[]): string {
  for (const t of tokens) {
    if (!/^[A-Za-z0-9_-]+$/.test(t)) throw new Error('array token outside the safe alphabet');
  }
  return `{${tokens.join(',')}}`;
}
