/**
 * Splits PostgreSQL's binary COPY output (`COPY … TO STDOUT (FORMAT binary)`) into groups of whole
 * tuples, without decoding any field. A group is a copy, so it can wait (for its sealed values to
 * be opened, see `copyExport`) while later chunks arrive, and then be formatted (`formatTuple`).
 *
 * The format (PostgreSQL docs, "COPY", Binary Format): an 11-byte signature, a 32-bit flags word
 * and a 32-bit header-extension length followed by that many bytes; then each tuple as a 16-bit
 * field count and, per field, a 32-bit length (-1 for NULL) and that many bytes; then a 16-bit -1
 * trailer. All integers are big-endian.
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_FIXED = SIGNATURE.length + 8;

/** Whole tuples, end to end. */
export interface TupleGroup {
  /** The tuples' bytes: a copy, which later input does not overwrite. */
  data: Buffer;
  rows: number;
}

export interface TupleSplitter {
  /** Takes the next bytes of the COPY output; returns the groups they completed (maybe none). */
  push(chunk: Buffer): TupleGroup[];
  /** The tuples after the last full group; throws unless the output ended with its trailer. */
  end(): TupleGroup | undefined;
}

/**
 * A splitter for tuples of exactly `fields` fields, grouped `groupRows` at a time. Throws on
 * anything else (a different signature, field count or a truncated stream): those would mean the
 * statement is not the one this process sent.
 */
export function tupleSplitter(fields: number, groupRows: number): TupleSplitter {
  /** The bytes received and not yet handed out are `pending[0, length)`; reused across chunks. */
  let pending = Buffer.allocUnsafe(64 * 1024);
  let length = 0;
  let headerRead = false;
  let ended = false;
  /** Byte offsets in `pending` of the tuples already found whole and not yet grouped. */
  let starts: number[] = [];
  /** Where in `pending` the next tuple starts. */
  let at = 0;

  const take = (count: number): TupleGroup => {
    const from = starts[0]!;
    const to = count < starts.length ? starts[count]! : at;
    const data = Buffer.allocUnsafe(to - from);
    pending.copy(data, 0, from, to);
    starts = starts.slice(count);
    return { data, rows: count };
  };

  /** Reads the header, then finds the whole tuples in `pending` from `at`, up to the trailer. */
  const scan = (): void => {
    if (!headerRead) {
      if (length < HEADER_FIXED) return;
      if (!pending.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('not binary COPY output');
      const extension = pending.readUInt32BE(SIGNATURE.length + 4);
      if (length < HEADER_FIXED + extension) return;
      at = HEADER_FIXED + extension;
      headerRead = true;
    }
    while (!ended && at + 2 <= length) {
      const count = pending.readInt16BE(at);
      if (count === -1) {
        ended = true;
        if (at + 2 !== length) throw new Error('bytes after the binary COPY trailer');
        return;
      }
      if (count !== fields) throw new Error(`binary COPY tuple of ${count} fields, expected ${fields}`);
      let end = at + 2;
      for (let f = 0; f < fields; f++) {
        if (end + 4 > length) return;
        const size = pending.readInt32BE(end);
        end += 4 + Math.max(0, size);
        if (end > length) return;
      }
      starts.push(at);
      at = end;
    }
  };

  return {
    push(chunk) {
      if (ended) {
        if (chunk.length > 0) throw new Error('bytes after the binary COPY trailer');
        return [];
      }
      // Drop the bytes already handed out, then append the chunk.
      const keepFrom = starts.length > 0 ? starts[0]! : headerRead ? at : 0;
      if (keepFrom > 0) {
        pending.copyWithin(0, keepFrom, length);
        length -= keepFrom;
        starts = starts.map((s) => s - keepFrom);
        at -= keepFrom;
      }
      if (length + chunk.length > pending.length) {
        const bigger = Buffer.allocUnsafe(Math.max(2 * pending.length, length + chunk.length));
        pending.copy(bigger, 0, 0, length);
        pending = bigger;
      }
      length += chunk.copy(pending, length);
      scan();
      const groups: TupleGroup[] = [];
      while (starts.length >= groupRows) groups.push(take(groupRows));
      return groups;
    },
    end() {
      if (!ended) throw new Error('binary COPY output ended without its trailer');
      return starts.length > 0 ? take(starts.length) : undefined;
    },
  };
}
