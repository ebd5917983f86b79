/**
 * Packs many short strings into a few large UTF-8 buffers. An export used to concatenate a
 * chunk's rows into one string and write that: V8 then flattens a rope of thousands of pieces
 * and encodes it, which measured several times the cost of formatting the rows. Encoding each
 * row straight into a shared buffer avoids both.
 */
export interface Utf8Chunks {
  /** Appends `text`. */
  add(text: string): void;
  /** The bytes added since the last call, as buffers of about the configured size, and forgets them. */
  take(): Buffer[];
}

/** `Utf8Chunks` filling buffers of `size` bytes (a longer text gets a buffer of its own size). */
export function utf8Chunks(size: number): Utf8Chunks {
  let buffer = Buffer.allocUnsafe(size);
  /** Start of the bytes not handed out yet, and end of the bytes written. */
  let start = 0;
  let end = 0;
  let full: Buffer[] = [];
  return {
    add(text) {
      // A UTF-16 code unit is at most 3 UTF-8 bytes, so this much room always holds `text`.
      const room = text.length * 3;
      if (end + room > buffer.length) {
        if (end > start) full.push(buffer.subarray(start, end));
        buffer = Buffer.allocUnsafe(Math.max(size, room));
        start = 0;
        end = 0;
      }
      end += buffer.write(text, end);
    },
    take() {
      const out = full;
      full = [];
      // The buffer keeps filling after its handed-out part: those bytes are never written again.
      if (end > start) out.push(buffer.subarray(start, end));
      start = end;
      return out;
    },
  };
}
