import { describe, expect, it } from 'vitest';
import { prepared } from './prepared.js';

describe('prepared', () => {
  it('names each text once, keeps values out of the name, and stops naming past its cap', () => {
    const a = prepared('SELECT $1::int', [1]);
    expect(a).toMatchObject({
      name: expect.stringMatching(/^auditlog-\d+$/),
      text: 'SELECT $1::int',
      values: [1],
    });
    expect(prepared('SELECT $1::int', [2])).toEqual({ name: a.name, text: 'SELECT $1::int', values: [2] });
    const b = prepared('SELECT $1::text', ['x']);
    expect(b.name).not.toBe(a.name);
    const named = new Set([a.name, b.name]);
    for (let i = 0; named.size < 10_000; i++) {
      const q = prepared(`SELECT ${i} + $1::int`, [i]);
      if (q.name === undefined) break;
      named.add(q.name);
    }
    expect(named.size).toBe(512);
    expect(prepared('SELECT 1 - $1::int', [1])).toEqual({ text: 'SELECT 1 - $1::int', values: [1] });
    // Texts named before the cap keep their names.
    expect(prepared('SELECT $1::int', [3]).name).toBe(a.name);
  });
});
