import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Config } from '../config.js';
import { invalidClaim, type Role } from './principal.js';
import { loadOrCreateSigningKey, SIGNING_ALG } from './signing-key.js';

/** Identity claims of a token issued by {@link signToken}. */
export interface TokenClaims {
  sub: string;
  tenant: string;
  role: Role;
}

/** Longest lifetime {@link signToken} issues: one year, so a forgotten token still dies eventually. */
export const MAX_TOKEN_TTL_SECONDS = 366 * 24 * 3600;

/**
 * Signs a token with the local key in `dataDir` (created on first use), valid for `ttlSeconds`.
 * The token carries `iss`/`aud` from `config`, `iat`, `exp`, a random `jti` and the key's `kid`.
 * Throws `TypeError`/`RangeError` on invalid claims or TTL, so no unverifiable token is ever issued.
 */
export async function signToken(
  dataDir: string,
  config: Pick<Config, 'JWT_ISSUER' | 'JWT_AUDIENCE'>,
  claims: TokenClaims,
  ttlSeconds = 3600,
): Promise<string> {
  const bad = invalidClaim(claims);
  if (bad) throw new TypeError(`invalid "${bad}" claim`);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw new RangeError(`ttlSeconds must be an integer from 1 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  const key = await loadOrCreateSigningKey(dataDir);
  const now = Math.floor(Date.now() / 1000);
  // Only the listed claims are copied: a caller passing a wider object cannot smuggle extra claims in.
  return new SignJWT({ tenant: claims.tenant, role: claims.role })
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(config.JWT_ISSUER)
    .setAudience(config.JWT_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .setJti(randomUUID())
    .sign(key.privateKey);
}
