import { TENANT_PATTERN } from '../auth/principal.js';

/**
 * OpenSearch names of one tenant. Reads and writes go through the alias `<prefix>-<tenant>`, which
 * points at a versioned index `<prefix>-<tenant>_v<n>`: a mapping change is a reindex into `_v<n+1>`
 * and an alias swap, invisible to the service. Tenant ids are `[a-z0-9-]` and never contain `_`, so
 * no tenant's alias can equal another tenant's index name (`acme_v1` is not a tenant id).
 */
export interface TenantNames {
  alias: string;
  index: string;
}

/** The current index version; bump it together with a change to `mapping.ts`. */
export const INDEX_VERSION = 1;

export function tenantNames(prefix: string, tenant: string): TenantNames {
  // Names are built from the tenant id, so refuse anything that is not one (no wildcards, commas,
  // or path characters can reach a URL or an index expression).
  if (!TENANT_PATTERN.test(tenant)) throw new Error('invalid tenant id for an index name');
  const alias = `${prefix}-${tenant}`;
  return { alias, index: `${alias}_v${INDEX_VERSION}` };
}

/** Name of the index template that gives every tenant index its settings and mapping. */
export function templateName(prefix: string): string {
  return prefix;
}
