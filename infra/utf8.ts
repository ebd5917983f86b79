/**
 * Whether `text` takes at most `maxBytes` bytes in UTF-8. Bytes are counted only when the answer
 * could be no: UTF-8 needs at most 3 bytes per UTF-16 code unit, and counting them costs about as
 * much as serializing a large value did.
 */
export function fitsUtf8(text: string, maxBytes: number): boolean {
  return text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes;
}
