import { describe, expect, it } from 'vitest';
import { fitsUtf8 } from './utf8.js';

describe('fitsUtf8', () => {
  it('answers by UTF-8 bytes, not string length', () => {
    expect(fitsUtf8('abc', 3)).toBe(true);
    expect(fitsUtf8('abcd', 3)).toBe(false);
    expect(fitsUtf8('é'.repeat(10), 20)).toBe(true); // 2 bytes each
    expect(fitsUtf8('é'.repeat(10), 19)).toBe(false);
    expect(fitsUtf8('€'.repeat(10), 30)).toBe(true); // 3 bytes each: the shortcut's bound
    expect(fitsUtf8('€'.repeat(10), 29)).toBe(false);
    expect(fitsUtf8('😀'.repeat(5), 20)).toBe(true); // 4 bytes per surrogate pair (2 code units)
    expect(fitsUtf8('😀'.repeat(5), 19)).toBe(false);
    expect(fitsUtf8('', 0)).toBe(true);
  });
});
