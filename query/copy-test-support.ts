/** Test support: PostgreSQL's binary COPY output for given tuples (see `tupleSplitter`). */

/** A field: NULL, an int4, UTF-8 text, or raw bytes. */
export type CopyField = null | number | string | Buffer;

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** The whole binary COPY output of `tuples`, with a header extension of `extension` bytes. */
export function binaryCopy(tuples: CopyField[][], extension = 0): Buffer {
  const parts: Buffer[] = [SIGNATURE];
  const header = Buffer.alloc(8 + extension);
  header.writeUInt32BE(extension, 4);
  parts.push(header);
  for (const tuple of tuples) {
    const count = Buffer.alloc(2);
    count.writeInt16BE(tuple.length);
    parts.push(count);
    for (const field of tuple) {
      const length = Buffer.alloc(4);
      if (field === null) {
        length.writeInt32BE(-1);
        parts.push(length);
        continue;
      }
      let bytes: Buffer;
      if (typeof field === 'number') {
        bytes = Buffer.alloc(4);
        bytes.writeInt32BE(field);
      } else {
        bytes = typeof field === 'string' ? Buffer.from(field) : field;
      }
      length.writeInt32BE(bytes.length);
      parts.push(length, bytes);
    }
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1);
  parts.push(trailer);
  return Buffer.concat(parts);
}
