/**
 * An export's output: buffers of about `size` bytes that rows are written into, as text
 * (`text`) or byte by byte (`room`, then `buf` at `pos`). An export used to concatenate a
 * chunk's rows into one string and write that: V8 then flattens a rope of thousands of pieces
 * and encodes it, which measured several times the cost of formatting the rows. Writing each row
 * straight into a shared buffer avoids both.
 */
export class ByteChunks {
  buf: Buffer;
  pos = 0;
  #start = 0;
  #full: Buffer[] = [];
  readonly #size: number;

  constructor(size: number) {
    this.#size = size;
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Makes room for `n` more bytes at `pos`. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos > this.#start) this.#full.push(this.buf.subarray(this.#start, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(this.#size, n));
    this.#start = 0;
    this.pos = 0;
  }

  /** Appends `text` as UTF-8. */
  text(text: string): void {
    this.room(text.length * 3);
    this.pos += this.buf.write(text, this.pos);
  }

  /** The bytes written since the last call, and forgets them (they are never written again). */
  take(): Buffer[] {
    const out = this.#full;
    this.#full = [];
    if (this.pos > this.#start) out.push(this.buf.subarray(this.#start, this.pos));
    this.#start = this.pos;
    return out;
  }
}
