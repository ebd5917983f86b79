import { HttpError } from '../http/errors.js';
import type { Principal } from './principal.js';

/**
 * Role and tenant rules, in the one place every read and write path goes through.
 * - user: writes events for its own tenant; reads only events whose user_id is its sub.
 * - auditor: reads everything in its tenant; writes nothing.
 * - admin: everything in its tenant.
 * - platform admin (tenant `*`): names the tenant explicitly.
 */

/** What a read may see: one tenant, and for the `user` role only its own events. */
export interface ReadScope {
  tenantId: string;
  /** Set for the `user` role: only events with this user_id are visible. */
  userId?: string;
}

export function readScope(p: Principal, requestedTenant: string | undefined): ReadScope {
  if (p.platform) {
    if (p.role === 'user') throw new HttpError(403, 'forbidden', 'this role cannot read audit logs');
    if (!requestedTenant) throw new HttpError(400, 'tenant_required', 'platform callers must name tenant_id');
    return { tenantId: requestedTenant };
  }
  // The same answer whether or not the named tenant exists: nothing is revealed about others.
  if (requestedTenant !== undefined && requestedTenant !== p.tenant) {
    throw new HttpError(403, 'forbidden_tenant', 'tenant_id must be your own tenant');
  }
  return p.role === 'user' ? { tenantId: p.tenant, userId: p.sub } : { tenantId: p.tenant };
}

/**
 * Whether the caller may write events at all, checked before the request is even validated, so
 * an unpermitted caller learns nothing from validation errors. Auditors never write; a platform
 * token writes only as admin: a platform `user` has no tenant of its own to write to.
 */
export function requireWriter(p: Principal): void {
  if (p.role === 'auditor') throw new HttpError(403, 'forbidden', 'auditors cannot write events');
  if (p.platform && p.role !== 'admin') {
    throw new HttpError(403, 'forbidden', 'platform callers write events only as admin');
  }
}

/** The tenant an event is written to, or a 400/403 naming what is wrong. */
export function writeTenant(p: Principal, eventTenant: string | undefined): string {
  requireWriter(p);
  if (p.platform) {
    if (!eventTenant)
      throw new HttpError(400, 'tenant_required', 'platform callers must set tenant_id on each event');
    return eventTenant;
  }
  if (eventTenant !== undefined && eventTenant !== p.tenant) {
    throw new HttpError(403, 'forbidden_tenant', 'tenant_id must be your own tenant');
  }
  return p.tenant;
}

/** Tenant management and other control-plane actions. */
export function requirePlatformAdmin(p: Principal): void {
  if (!p.platform || p.role !== 'admin') {
    throw new HttpError(403, 'forbidden', 'platform admin role required');
  }
}

/** Destructive tenant actions such as cleanup. */
export function requireTenantAdmin(p: Principal): void {
  if (p.role !== 'admin') throw new HttpError(403, 'forbidden', 'admin role required');
}
