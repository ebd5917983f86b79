import Type, { type Static } from 'typebox';
import { ACTION_PATTERN, TENANT_ID_PATTERN } from '../infra/schema/event.js';

const CommaList = (itemPattern: string, description: string) =>
  Type.String({ pattern: `^${itemPattern.slice(1, -1)}(,${itemPattern.slice(1, -1)})*$`, description });

/** Query-string filters shared by search, export, stats and the stream. */
export const FilterProperties = {
  tenant_id: Type.Optional(
    Type.String({
      pattern: TENANT_ID_PATTERN,
      description: 'Tenant to read; platform admins only, others may name only their own.',
    }),
  ),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'occurred_at >= from' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'occurred_at < to' })),
  user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  action: Type.Optional(CommaList(ACTION_PATTERN, 'Comma list of actions')),
  resource_type: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  resource_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  severity: Type.Optional(CommaList('^(INFO|WARNING|ERROR|CRITICAL)$', 'Comma list of severities')),
  request_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
};

/** Most `metadata.<key>=<value>` filters in one request; each is one blind-index token to match. */
export const MAX_METADATA_FILTERS = 8;

/** Query keys naming a metadata filter. The key part is bounded so a filter cannot be used to store junk. */
export const METADATA_KEY_PATTERN = '^metadata\\.[A-Za-z0-9_.-]{1,64}$';

/** Filters only search and export have: they need the events table itself, not rollups. */
export const SearchFilterProperties = {
  ...FilterProperties,
  q: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 512,
      description:
        'Full-text search over message, action, resource type and id, user id and masked metadata values, ' +
        'in web-search syntax: words (all must match), "quoted phrases", OR, -exclusion. Case-insensitive, no stemming.',
      examples: ['"shipping address" -refund'],
    }),
  ),
  ip_address: Type.Optional(
    Type.String({
      minLength: 2,
      maxLength: 64,
      description: 'An exact IPv4/IPv6 address, or a CIDR range such as 10.0.0.0/8',
      examples: ['203.0.113.0/24'],
    }),
  ),
  sort: Type.Optional(
    Type.Union([Type.Literal('asc'), Type.Literal('desc')], {
      description:
        'Order by occurred_at (ties by sequence). Default desc (newest first); with request_id the ' +
        'order is the sequence (causal) order and the default is asc.',
    }),
  ),
};

/**
 * `metadata.<key>=<value>` exact matches, validated by ajv next to `additionalProperties: false`.
 * Only top-level scalar metadata values (as text, after masking) are indexed, so a masked secret
 * cannot be probed with a filter.
 */
const metadataFilters = {
  patternProperties: {
    [METADATA_KEY_PATTERN]: Type.String({
      minLength: 1,
      maxLength: 256,
      description: 'Exact match on a top-level metadata value (after masking)',
    }),
  },
};

export const SearchQuery = Type.Object(
  {
    ...SearchFilterProperties,
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false, ...metadataFilters },
);
export type SearchQuery = Static<typeof SearchQuery>;

/** Formats of `GET /logs/export`. */
export type ExportFormatName = 'json' | 'ndjson' | 'csv';

export const ExportQuery = Type.Object(
  {
    ...SearchFilterProperties,
    format: Type.Union([Type.Literal('json'), Type.Literal('ndjson'), Type.Literal('csv')], {
      default: 'json',
      description: 'json (one array), ndjson (one event per line) or csv (RFC 4180)',
    }),
  },
  { additionalProperties: false, ...metadataFilters },
);
export type ExportQuery = Static<typeof ExportQuery>;

/** The filters `buildWhere` understands (the query string minus paging and tenant selection). */
export type Filters = Omit<SearchQuery, 'limit' | 'cursor' | 'tenant_id' | 'sort'>;
