import { describe, expect, it } from 'vitest';
import { binaryCopy, type CopyField } from './copy-test-support.js';
import { type TupleGroup, tupleSplitter } from './copy-tuples.js';

const tuples: CopyField[][] = Array.from({ length: 23 }, (_, i) => [
  i,
  `row ${i} ${'é'.repeat(i)}`,
  i % 3 === 0 ? null : Buffer.from([0, 255, i]),
]);

/** Each tuple alone, as its own binary COPY output minus header and trailer. */
const alone = tuples.map((t) => binaryCopy([t]).subarray(19, -2));

/** Feeds `output` to a splitter in chunks of `sizes` (cycled); returns every group. */
function split(output: Buffer, sizes: number[], groupRows = 5): TupleGroup[] {
  const splitter = tupleSplitter(3, groupRows);
  const groups: TupleGroup[] = [];
  let at = 0;
  for (let i = 0; at < output.length; i++) {
    const size = sizes[i % sizes.length]!;
    groups.push(...splitter.push(output.subarray(at, at + size)));
    at += size;
  }
  const rest = splitter.end();
  if (rest) groups.push(rest);
  return groups;
}

describe('tupleSplitter', () => {
  it('groups whole tuples, whatever the chunk boundaries', () => {
    const output = binaryCopy(tuples, 7);
    for (const sizes of [[output.length], [1], [2, 3], [17], [64, 1, 5], [19, 40]]) {
      const groups = split(output, sizes);
      expect(groups.map((g) => g.rows)).toEqual([5, 5, 5, 5, 3]);
      const all = Buffer.concat(groups.map((g) => g.data));
      expect(all.equals(Buffer.concat(alone))).toBe(true);
      // Each group is exactly its tuples.
      expect(groups[1]!.data.equals(Buffer.concat(alone.slice(5, 10)))).toBe(true);
    }
  });

  it('hands out copies that later input does not overwrite', () => {
    const output = binaryCopy(tuples);
    const splitter = tupleSplitter(3, 2);
    const first = splitter.push(output.subarray(0, 80));
    const snapshot = first.map((g) => Buffer.from(g.data));
    splitter.push(output.subarray(80));
    expect(first.map((g) => g.data)).toEqual(snapshot);
  });

  it('handles an empty result', () => {
    expect(split(binaryCopy([]), [1])).toEqual([]);
  });

  it('refuses output that is not what was asked for', () => {
    const wrongCount = binaryCopy([[1, 'a']]);
    expect(() => split(wrongCount, [100])).toThrow('binary COPY tuple of 2 fields, expected 3');
    const text = Buffer.from('1\ta\t\\N\n');
    expect(() => split(Buffer.concat([text, Buffer.alloc(20)]), [100])).toThrow('not binary COPY output');
    const output = binaryCopy(tuples);
    expect(() => split(output.subarray(0, output.length - 2), [100])).toThrow('ended without its trailer');
    expect(() => split(output.subarray(0, 50), [100])).toThrow('ended without its trailer');
    expect(() => split(Buffer.concat([output, Buffer.from([0])]), [output.length + 1])).toThrow(
      'bytes after the binary COPY trailer',
    );
  });
});
