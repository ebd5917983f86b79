import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JWSAlgorithm,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import type { Config } from '../config.js';
import { AuthError, invalidClaim, PLATFORM_TENANT, type Principal, type Role } from './principal.js';
import { loadOrCreateSigningKey } from './signing-key.js';

/** Verifies bearer tokens. */
export interface Verifier {
  /**
   * Resolves to the token's caller, or rejects with `AuthError(401)` for any problem with the
   * token. When the remote JWKS cannot be fetched it rejects with a plain `Error` instead: that is
   * an outage on our side (answer 5xx), not a bad token. The principal is frozen because
   * repeat verifications of the same token share it through the cache.
   */
  verify(token: string): Promise<Principal>;
}

/** Tuning for {@link createVerifier}. */
export interface VerifierOptions {
  /** Verified tokens remembered for fast repeat requests; `0` disables the cache. Default 10 000. */
  cacheMaxEntries?: number;
  /** Longest a verified token is remembered, in ms (never past its `exp`). Default 30 000. */
  cacheTtlMs?: number;
}

/**
 * Asymmetric algorithms only. Listing them explicitly is what rejects `alg: none` and HS*: with an
 * HMAC allowed, a public key could be misused as the shared secret (algorithm confusion).
 */
export const ALLOWED_ALGORITHMS: readonly JWSAlgorithm[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

/** Seconds of clock skew tolerated on `exp`/`nbf` between the issuer and this host. */
export const CLOCK_TOLERANCE_SECONDS = 5;

/** Tokens longer than this are refused before any parsing: no legitimate token comes close. */
export const MAX_TOKEN_LENGTH = 8192;

/**
 * Builds the token verifier: keys come from `config.JWKS_URL` when set, otherwise from the local
 * signing key in `config.DATA_DIR` (created on first use). Requires `iss`, `aud`, `exp`, and valid
 * `sub`, `tenant` and `role` claims.
 */
export async function createVerifier(
  config: Pick<Config, 'DATA_DIR' | 'JWKS_URL' | 'JWT_ISSUER' | 'JWT_AUDIENCE'>,
  options: VerifierOptions = {},
): Promise<Verifier> {
  const jwksUrl = config.JWKS_URL;
  const remote = Boolean(jwksUrl);
  const keys: JWTVerifyGetKey = jwksUrl
    ? createRemoteJWKSet(new URL(jwksUrl))
    : createLocalJWKSet({ keys: [(await loadOrCreateSigningKey(config.DATA_DIR)).publicJwk] });
  const verifyOptions = {
    algorithms: [...ALLOWED_ALGORITHMS],
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['exp', 'sub', 'tenant', 'role'],
  };
  const cache = new TokenCache(options.cacheMaxEntries ?? 10_000, options.cacheTtlMs ?? 30_000);

  return {
    async verify(token: string): Promise<Principal> {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
        throw new AuthError(401, 'token_invalid', 'token is malformed');
      }
      const cached = cache.get(token);
      if (cached) return cached;

      let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
      try {
        ({ payload } = await jwtVerify(token, keys, verifyOptions));
      } catch (err) {
        throw toAuthError(err, remote);
      }
      const bad = invalidClaim(payload);
      if (bad) throw new AuthError(401, 'token_claims_invalid', `token "${bad}" claim is invalid`);
      const tenant = payload.tenant as string;
      const principal: Principal = Object.freeze({
        sub: payload.sub as string,
        tenant,
        role: payload.role as Role,
        platform: tenant === PLATFORM_TENANT,
      });
      // requiredClaims guarantees a numeric exp.
      cache.set(token, principal, (payload.exp as number) * 1000);
      return principal;
    },
  };
}

/**
 * Maps a jose failure to a client-safe AuthError. jose messages name claims but never echo their
 * values; we still use fixed messages so nothing from the token can reach the response.
 */
function toAuthError(err: unknown, remote: boolean): Error {
  if (err instanceof errors.JWTExpired) return new AuthError(401, 'token_expired', 'token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    // err.claim is a claim name jose chose, but check its shape anyway before it reaches a client.
    const message = /^[a-z]{1,16}$/.test(err.claim)
      ? `token "${err.claim}" claim is invalid`
      : 'token claims are invalid';
    return new AuthError(401, 'token_claims_invalid', message);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new AuthError(401, 'token_invalid', 'token algorithm is not allowed');
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError(401, 'token_invalid', 'token signature is invalid');
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError(401, 'token_invalid', 'token is not signed by a trusted key');
  }
  // Failures to obtain the key set (timeout, non-200, bad JSON, network error) are not the caller's fault.
  const keySetFailure =
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    (err instanceof errors.JOSEError && err.code === 'ERR_JOSE_GENERIC') ||
    !(err instanceof errors.JOSEError);
  if (remote && keySetFailure) return new Error('JWKS unavailable: cannot verify tokens', { cause: err });
  // Everything else (bad encoding, unsupported crit header, ...) fails closed as an invalid token.
  return new AuthError(401, 'token_invalid', 'token is malformed');
}

/**
 * Verified tokens keyed by the exact token string, so only a byte-identical, already verified token
 * hits. Entries expire at the earlier of the token's `exp` and `ttlMs`, which also bounds how long a
 * key removed from a remote JWKS keeps working (jose caches the JWKS itself for longer).
 */
class TokenCache {
  private readonly entries = new Map<string, { principal: Principal; until: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
  ) {}

  get(token: string): Principal | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (Date.now() < entry.until) return entry.principal;
    this.entries.delete(token);
    return undefined;
  }

  set(token: string, principal: Principal, expMs: number): void {
    if (this.maxEntries <= 0) return;
    const until = Math.min(expMs, Date.now() + this.ttlMs);
    if (until <= Date.now()) return;
    // Map iterates in insertion order, so the first key is the oldest entry.
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(token, { principal, until });
  }
}

/**
 * Returns the token of an `Authorization: Bearer <token>` header. Throws `AuthError(401,
 * 'missing_token')` when the header is absent or not a well-formed bearer credential (RFC 6750).
 */
export function extractBearer(header: string | undefined): string {
  const match =
    typeof header === 'string' && header.length <= MAX_TOKEN_LENGTH + 16
      ? /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header)
      : null;
  if (!match?.[1]) {
    throw new AuthError(401, 'missing_token', 'expected an "Authorization: Bearer <token>" header');
  }
  return match[1];
}
