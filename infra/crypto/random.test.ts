import { describe, expect, it } from 'vitest';
import { open, seal } from './aead.js';
import { randomBytesPooled } from './random.js';

describe('randomBytesPooled', () => {
  it('hands out fresh, independent buffers of the asked length across pool refills', () => {
    const seen = new Set<string>();
    // 64 KiB per refill: 20,000 × 12 bytes crosses several refills.
    for (let i = 0; i < 20_000; i++) {
      const b = randomBytesPooled(12);
      expect(b.length).toBe(12);
      seen.add(b.toString('hex'));
    }
    expect(seen.size).toBe(20_000);
    const a = randomBytesPooled(16);
    const copy = Buffer.from(a);
    randomBytesPooled(256);
    expect(a.equals(copy)).toBe(true); // not a view the next refill could overwrite
  });

  it('is not all zeros and uses every byte value', () => {
    const counts = new Array(256).fill(0);
    for (let i = 0; i < 400; i++) for (const x of randomBytesPooled(256)) counts[x]++;
    expect(counts.every((c) => c > 0)).toBe(true);
  });

  it('rejects sizes outside 1..256', () => {
    expect(() => randomBytesPooled(0)).toThrow(RangeError);
    expect(() => randomBytesPooled(257)).toThrow(RangeError);
  });

  it('gives seal a distinct IV each time', () => {
    const key = Buffer.alloc(32, 7);
    const aad = Buffer.from('t/1');
    const a = seal(key, Buffer.from('same'), aad);
    const b = seal(key, Buffer.from('same'), aad);
    expect(a.subarray(0, 12).equals(b.subarray(0, 12))).toBe(false);
    expect(open(key, a, aad).toString()).toBe('same');
  });
});
