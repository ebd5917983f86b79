import { describe, expect, it } from 'vitest';
import { ByteChunks } from './byte-chunks.js';

describe('ByteChunks', () => {
  it('packs texts into buffers of about the given size, as UTF-8, in order', () => {
    const chunks = new ByteChunks(16);
    const texts = ['abc', 'Zürich – 東京 😀', '', 'x'.repeat(40), '\ud800', 'end'];
    let all: Buffer[] = [];
    for (const t of texts.slice(0, 3)) chunks.text(t);
    all = all.concat(chunks.take());
    expect(chunks.take()).toEqual([]);
    for (const t of texts.slice(3)) chunks.text(t);
    const rest = chunks.take();
    all = all.concat(rest);
    // The bytes writing the joined string would give (a lone surrogate becomes U+FFFD either way).
    expect(Buffer.concat(all)).toEqual(Buffer.from(texts.join('')));
    // The 40-character text got a buffer of its own rather than overflowing a 16-byte one.
    expect(rest.some((b) => b.length >= 40)).toBe(true);
  });

  it('takes bytes written directly after making room, between texts', () => {
    const chunks = new ByteChunks(8);
    chunks.text('ab');
    for (const n of [3, 9]) {
      chunks.room(n);
      for (let i = 0; i < n; i++) chunks.buf[chunks.pos++] = 0x30 + i;
    }
    chunks.text('é');
    expect(Buffer.concat(chunks.take()).toString()).toBe('ab012012345678é');
  });

  it('never rewrites bytes it has handed out', () => {
    const chunks = new ByteChunks(1024);
    chunks.text('first');
    const [first] = chunks.take();
    chunks.text('second');
    const [second] = chunks.take();
    expect([first?.toString(), second?.toString()]).toEqual(['first', 'second']);
  });
});
