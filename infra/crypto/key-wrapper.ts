import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { open, seal } from './aead.js';

/**
 * Wraps and unwraps data keys: the shape of AWS KMS `Encrypt`/`Decrypt` with an encryption
 * context, so a KMS-backed implementation can replace the local one without touching callers.
 */
export interface KeyWrapper {
  /** Stable identifier stored beside each wrapped key (`local:<fingerprint>` or a KMS key ARN). */
  readonly id: string;
  wrap(plaintextKey: Buffer, context: Record<string, string>): Promise<Buffer>;
  unwrap(wrappedKey: Buffer, context: Record<string, string>): Promise<Buffer>;
}

function contextAad(context: Record<string, string>): Buffer {
  return Buffer.from(JSON.stringify(Object.entries(context).sort(([a], [b]) => a.localeCompare(b))));
}

/** Reads `<file>`, creating it with 32 random bytes (mode 0600) on first use; racing creators agree. */
export function loadOrCreateKeyFile(file: string): Buffer {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    const fd = fs.openSync(file, 'wx', 0o600);
    fs.writeSync(fd, randomBytes(32).toString('hex'));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  }
  for (let i = 0; i < 50; i++) {
    const hex = fs.readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
    // Another process created it a moment ago and is still writing.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  throw new Error(`master key file ${file} is not 64 hex characters`);
}

/** The default wrapper: a master key in a local file under DATA_DIR. */
export class LocalKeyWrapper implements KeyWrapper {
  readonly id: string;

  constructor(private readonly masterKey: Buffer) {
    this.id = `local:${createHash('sha256').update(masterKey).digest('hex').slice(0, 16)}`;
  }

  static fromDataDir(dataDir: string): LocalKeyWrapper {
    return new LocalKeyWrapper(loadOrCreateKeyFile(path.join(dataDir, 'master.key')));
  }

  async wrap(plaintextKey: Buffer, context: Record<string, string>): Promise<Buffer> {
    return seal(this.masterKey, plaintextKey, contextAad(context));
  }

  async unwrap(wrappedKey: Buffer, context: Record<string, string>): Promise<Buffer> {
    return open(this.masterKey, wrappedKey, contextAad(context));
  }

  /** A purpose-bound key derived from the master key (e.g. for embedded queue bodies). */
  deriveKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.masterKey, Buffer.alloc(0), `auditlog/${purpose}`, 32));
  }
}
