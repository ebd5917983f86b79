import { describe, expect, it } from 'vitest';
import type { EventRow, SealedOpener } from './decode.js';
import { keyedFeed } from './keyed-feed.js';

/** An opener whose keys are key ids; `loaded` grows as `load` is called. */
function opener(loaded: Set<number>): SealedOpener & { loads: number[][] } {
  const loads: number[][] = [];
  return {
    loads,
    ready: (row) => !row.sealed || loaded.has(row.key_id),
    async load(rows) {
      loads.push(rows.map((r) => r.key_id));
      for (const r of rows) loaded.add(r.key_id);
    },
    open(row) {
      if (!row.sealed) return undefined;
      if (!loaded.has(row.key_id)) throw new Error(`key ${row.key_id} not loaded`);
      return `opened with ${row.key_id}`;
    },
    key: (row) => (loaded.has(row.key_id) ? Buffer.alloc(32, row.key_id) : undefined),
  };
}

const row = (id: string, keyId: number, sealed = true) =>
  ({ id, key_id: keyId, sealed: sealed ? Buffer.from('x') : null }) as unknown as EventRow;

describe('keyedFeed', () => {
  it('hands rows on at once while their keys are loaded, and keeps order when one is not', async () => {
    const keys = opener(new Set([1]));
    const emitted: string[] = [];
    const feed = keyedFeed(keys, (r, sealed) => emitted.push(`${r.id}:${sealed ?? '-'}`));
    for (const r of [row('a', 1), row('b', 0, false), row('c', 2), row('d', 1), row('e', 0, false)]) {
      feed.push(r);
    }
    // c's key (2) is not loaded: c and everything after it wait, even d and e.
    expect(emitted).toEqual(['a:opened with 1', 'b:-']);
    await feed.flush();
    expect(keys.loads).toEqual([[2, 1, 0]]);
    expect(emitted).toEqual(['a:opened with 1', 'b:-', 'c:opened with 2', 'd:opened with 1', 'e:-']);
    feed.push(row('f', 2));
    await feed.flush();
    expect(emitted.at(-1)).toBe('f:opened with 2');
    expect(keys.loads).toHaveLength(1);
  });
});
