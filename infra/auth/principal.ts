/** Roles a token may carry, from most to least privileged. */
export const ROLES = ['admin', 'auditor', 'user'] as const;

/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** The `tenant` claim value of a platform admin, whose scope is every tenant. */
export const PLATFORM_TENANT = '*';

/** Tenant ids: lowercase, DNS-label-like, so they are safe in URLs, log lines and index names. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Longest accepted `sub` claim; bounds what a token can make us store and log per request. */
export const MAX_SUB_LENGTH = 256;

/** The verified caller. `tenant` is a tenant id, or '*' for a platform admin (platform === true). */
export interface Principal {
  sub: string;
  tenant: string;
  role: Role;
  platform: boolean;
}

/**
 * An authentication (401) or authorization (403) failure. `code` is a stable machine-readable
 * reason for the response body; `message` is safe to return to the client (it never repeats
 * token contents).
 */
export class AuthError extends Error {
  override name = 'AuthError';

  constructor(
    public readonly status: 401 | 403,
    public readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** True when `value` is one of {@link ROLES}. */
export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** True for a tenant id matching {@link TENANT_PATTERN} or exactly {@link PLATFORM_TENANT}. */
export function isValidTenant(value: unknown): value is string {
  return typeof value === 'string' && (value === PLATFORM_TENANT || TENANT_PATTERN.test(value));
}

/** True for a non-empty subject of at most {@link MAX_SUB_LENGTH} characters. */
export function isValidSub(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_SUB_LENGTH;
}

/**
 * Checks the identity claims shared by signing and verification. Returns the name of the first
 * invalid claim (never its value, which may be attacker-controlled), or undefined when all are valid.
 */
export function invalidClaim(claims: {
  sub?: unknown;
  tenant?: unknown;
  role?: unknown;
}): string | undefined {
  if (!isValidSub(claims.sub)) return 'sub';
  if (!isValidTenant(claims.tenant)) return 'tenant';
  if (!isRole(claims.role)) return 'role';
  return undefined;
}
