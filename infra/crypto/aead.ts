import { createCipheriv, createDecipheriv } from 'node:crypto';
import { randomBytesPooled } from './random.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AAD binding an event's sealed value to its tenant and event id, for `seal` and `open` alike. */
export function sealAad(tenantId: string, eventId: string): Buffer {
  return Buffer.from(sealAadText(tenantId, eventId));
}

/** `sealAad` as text (its UTF-8 bytes are the AAD). */
export function sealAadText(tenantId: string, eventId: string): string {
  return `${tenantId}/${eventId}`;
}

/**
 * AES-256-GCM. Output layout: iv (12) | tag (16) | ciphertext. The AAD binds a ciphertext to its
 * context (tenant and event id), so a sealed value copied into another tenant's row fails to open.
 */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytesPooled(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]);
}

/**
 * Inverse of `seal`; throws if the key, AAD or data do not match. Nothing is returned unless the
 * tag verifies (`final` throws otherwise); GCM's `final` yields no bytes, so the plaintext is
 * `update`'s output as it is.
 */
export function open(key: Buffer, sealed: Uint8Array, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  const plaintext = decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES));
  decipher.final();
  return plaintext;
}

/** `open` for a UTF-8 plaintext, returned as a string. */
export function openText(key: Buffer, sealed: Buffer, aad: Buffer): string {
  return open(key, sealed, aad).toString('utf8');
}
