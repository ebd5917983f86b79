import { describe, expect, it } from 'vitest';
import { mapInSlices } from './slices.js';

describe('mapInSlices', () => {
  it('maps in order, like Array.map', async () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    expect(await mapInSlices(items, (x) => x * 2, 7)).toEqual(items.map((x) => x * 2));
    expect(await mapInSlices([], (x: number) => x)).toEqual([]);
  });

  it('lets other callbacks run between slices', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('other'));
    await mapInSlices([1, 2, 3, 4], (x) => order.push(`item ${x}`), 2);
    // The callback queued before the map ran after the first slice, not after the whole map.
    expect(order).toEqual(['item 1', 'item 2', 'other', 'item 3', 'item 4']);
  });

  it('propagates a throw and stops there', async () => {
    const seen: number[] = [];
    await expect(
      mapInSlices([1, 2, 3], (x) => {
        seen.push(x);
        if (x === 2) throw new Error('bad');
        return x;
      }),
    ).rejects.toThrow('bad');
    expect(seen).toEqual([1, 2]);
  });
});
