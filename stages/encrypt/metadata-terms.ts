/** Bounds keep one event from bloating the index: enough for realistic metadata. */
const MAX_PAIRS = 64;
const MAX_TEXT = 4096;
const MAX_VALUE = 256;

export interface MetadataTerms {
  /** Top-level scalar `key=value` pairs, for exact `metadata.<key>=<value>` filters. */
  pairs: [string, string][];
  /** Scalar values anywhere in the (already masked) metadata, space-joined, for full-text search. */
  text: string;
}

/** Extracts the searchable parts of masked metadata. */
export function metadataTerms(metadata: Record<string, unknown> | undefined): MetadataTerms {
  if (!metadata) return { pairs: [], text: '' };
  const pairs: [string, string][] = [];
  for (const [k, v] of Object.entries(metadata)) {
    if (pairs.length >= MAX_PAIRS) break;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      const s = String(v);
      if (s.length <= MAX_VALUE) pairs.push([k, s]);
    }
  }
  const parts: string[] = [];
  let length = 0;
  const walk = (value: unknown): void => {
    if (length >= MAX_TEXT) return;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      const s = String(value);
      parts.push(s);
      length += s.length + 1;
    } else if (value && typeof value === 'object') {
      for (const child of Object.values(value)) walk(child);
    }
  };
  walk(metadata);
  return { pairs, text: parts.join(' ').slice(0, MAX_TEXT) };
}
