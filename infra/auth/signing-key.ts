import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose';

/** File name of the local signing key inside `DATA_DIR`. */
export const SIGNING_KEY_FILE = 'jwt-signing-key.json';

/** Algorithm of the local signing key. */
export const SIGNING_ALG = 'ES256';

/** The local token signing key. */
export interface SigningKey {
  /** Non-extractable private key for `SignJWT`. */
  privateKey: CryptoKey;
  /** Public half (no `d`), with `kid`, `alg` and `use`, ready to publish in a JWKS. */
  publicJwk: JWK;
  /** RFC 7638 thumbprint of the public key; goes in every token's `kid` header. */
  kid: string;
  alg: typeof SIGNING_ALG;
}

/**
 * Returns the signing key stored at `<dataDir>/jwt-signing-key.json`, generating an ES256 key
 * pair there (mode 0600) on first use. Safe to call concurrently from several processes: exactly
 * one generated key is published and every caller returns that one.
 */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const file = path.join(dataDir, SIGNING_KEY_FILE);
  const existing = await readKeyFile(file);
  if (existing) return fromPrivateJwk(existing, file);

  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicPart(jwk));
  const stored: JWK = { ...jwk, kid, alg: SIGNING_ALG, use: 'sig' };
  if (await publish(file, `${JSON.stringify(stored, null, 2)}\n`)) return fromPrivateJwk(stored, file);
  // Another process won the race: use its key so tokens signed by either process verify everywhere.
  return fromPrivateJwk(await readWinner(file), file);
}

function publicPart(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

async function fromPrivateJwk(jwk: JWK, file: string): Promise<SigningKey> {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d || !jwk.x || !jwk.y) {
    throw new Error(`${file} does not hold a P-256 private JWK; delete it to generate a new key`);
  }
  // Derive the kid rather than trusting the stored one, so a hand-edited file cannot mislabel the key.
  const kid = await calculateJwkThumbprint(publicPart(jwk));
  const privateKey = (await importJWK({ ...jwk, kid, alg: SIGNING_ALG }, SIGNING_ALG)) as CryptoKey;
  return {
    privateKey,
    publicJwk: { ...publicPart(jwk), kid, alg: SIGNING_ALG, use: 'sig' },
    kid,
    alg: SIGNING_ALG,
  };
}

/** Reads and parses the key file; undefined when it does not exist. */
async function readKeyFile(file: string): Promise<JWK | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as JWK;
  } catch (cause) {
    throw new Error(`${file} is not valid JSON; delete it to generate a new key`, { cause });
  }
}

/**
 * Reads the file another process just published. With hard links it is complete the moment it
 * appears; the retries cover the non-atomic fallback in {@link publish}, where it can briefly be
 * missing or partially written.
 */
async function readWinner(file: string): Promise<JWK> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const jwk = await readKeyFile(file);
      if (jwk) return jwk;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw lastError ?? new Error(`${file} did not appear after another process claimed it`);
}

/**
 * Publishes `content` at `file` unless the file already exists. Returns false when another writer
 * got there first.
 *
 * The content is written and fsynced to a private temp file (opened `wx`, so a planted file or
 * symlink at that name is never followed), then hard-linked into place. `link` fails with EEXIST
 * instead of replacing, which `rename` would do silently: two racing processes would then each
 * keep using their own key and reject each other's tokens.
 */
async function publish(file: string, content: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeNew(tmp, content);
    try {
      await fs.link(tmp, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      // Some filesystems (certain network/FUSE mounts) lack hard links: fall back to an exclusive create.
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      try {
        await writeNew(file, content);
      } catch (err2) {
        if ((err2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw err2;
      }
    }
    await syncDir(path.dirname(file));
    return true;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** Creates `file` exclusively with mode 0600 and writes `content` durably. */
async function writeNew(file: string, content: string): Promise<void> {
  const handle = await fs.open(file, 'wx', 0o600);
  try {
    // The open mode is filtered by the umask; chmod makes the result exact.
    await handle.chmod(0o600);
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes the new directory entry durable; best effort because not every platform can fsync a directory. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Ignored: durability of the entry is an optimisation, the key itself is already fsynced.
  }
}
