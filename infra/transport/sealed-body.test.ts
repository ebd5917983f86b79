import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seal } from '../crypto/aead.js';
import { openBody, sealBody } from './sealed-body.js';

const key = randomBytes(32);
const aad = Buffer.from('mask\u0000tenant-a');
const batch = JSON.stringify({
  v: 1,
  tenant_id: 'tenant-a',
  events: Array.from({ length: 200 }, (_, i) => ({
    id: `0190a000-0000-7000-8000-${String(i).padStart(12, '0')}`,
    action: 'UPDATE',
    resource_type: 'invoice',
    message: `refund ${i} issued to jane.doe@example.com`,
  })),
});

describe('sealed queue bodies', () => {
  it('round-trips a body, stored compressed: much smaller than its plaintext', () => {
    const sealed = sealBody(key, Buffer.from(batch), aad);
    expect(sealed.length).toBeLessThan(batch.length / 4);
    expect(openBody(key, sealed, aad)).toBe(batch);
  });

  it('holds no plaintext: compressed first, then sealed', () => {
    const sealed = sealBody(key, Buffer.from(batch), aad);
    for (const needle of ['jane.doe', 'refund', 'tenant-a']) {
      expect(sealed.includes(Buffer.from(needle))).toBe(false);
    }
  });

  it('fails to open under another key or another queue and group', () => {
    const sealed = sealBody(key, Buffer.from(batch), aad);
    expect(() => openBody(randomBytes(32), sealed, aad)).toThrow();
    expect(() => openBody(key, sealed, Buffer.from('mask\u0000tenant-b'))).toThrow();
  });

  it('opens a body sealed uncompressed, as queues written before compression hold', () => {
    expect(openBody(key, seal(key, Buffer.from(batch), aad), aad)).toBe(batch);
    expect(openBody(key, seal(key, Buffer.from(''), aad), aad)).toBe('');
  });
});
