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

export const SearchQuery = Type.Object(
  {
    ...FilterProperties,
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);
export type SearchQuery = Static<typeof SearchQuery>;
export type Filters = Omit<SearchQuery, 'limit' | 'cursor' | 'tenant_id'>;
