import { describe, expect, it } from 'vitest';
import { utf8Chunks } from './utf8-chunks.js';

describe('utf8Chunks', () => {
  it('packs texts into buffers of about the given size, as UTF-8, in order', () => {
    const chunks = utf8Chunks(16);
    const texts = ['abc', 'Zürich – 東京 😀', '', 'x'.repeat(40), '\ud800', 'end'];
    let all: Buffer[] = [];
    for (const t of texts.slice(0, 3)) chunks.add(t);
    all = all.concat(chunks.take());
    expect(chunks.take()).toEqual([]);
    for (const t of texts.slice(3)) chunks.add(t);
    const rest = chunks.take();
    all = all.concat(rest);
    // The bytes writing the joined string would give (a lone surrogate becomes U+FFFD either way).
    expect(Buffer.concat(all)).toEqual(Buffer.from(texts.join('')));
    // The 40-byte text got a buffer of its own rather than overflowing a 16-byte one.
    expect(rest.some((b) => b.length >= 40)).toBe(true);
  });

  it('never rewrites bytes it has handed out', () => {
    const chunks = utf8Chunks(1024);
    chunks.add('first');
    const [first] = chunks.take();
    chunks.add('second');
    const [second] = chunks.take();
    expect([first?.toString(), second?.toString()]).toEqual(['first', 'second']);
  });
});
