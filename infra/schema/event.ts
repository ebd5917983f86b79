import Type, { type Static } from 'typebox';

/**
 * The audit event: the single source of truth. Ingest validation (ajv), the OpenAPI document,
 * the TypeScript types, the queue-boundary checks and the database column mapping
 * (`infra/schema/columns.ts`) all derive from the schemas in this file.
 */

/** Limits, documented in the README. */
export const LIMITS = Object.freeze({
  /** Largest serialized event accepted, in bytes. */
  eventBytes: 64 * 1024,
  /** Most events in one bulk request. */
  bulkEvents: 1000,
  /** Largest bulk request body, in bytes. */
  bulkBytes: 5 * 1024 * 1024,
  /** Deepest nesting inside `before`, `after` or `metadata` (the object itself is depth 1). */
  objectDepth: 8,
  /** Furthest into the future `occurred_at` may be (clock skew), in ms. */
  futureSkewMs: 24 * 60 * 60 * 1000,
});

export const TENANT_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';
export const ACTION_PATTERN = '^[A-Z][A-Z0-9_]{1,63}$';
export const SEVERITIES = ['INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const;
export const STANDARD_ACTIONS = ['CREATE', 'UPDATE', 'DELETE', 'VIEW', 'LOGIN', 'LOGOUT', 'EXPORT'] as const;

export const TenantId = Type.String({
  pattern: TENANT_ID_PATTERN,
  description: 'Tenant id',
  examples: ['acme'],
});
export const Severity = Type.Union(
  [Type.Literal('INFO'), Type.Literal('WARNING'), Type.Literal('ERROR'), Type.Literal('CRITICAL')],
  { description: 'Severity level', default: 'INFO' },
);
const JsonObject = Type.Record(Type.String({ maxLength: 256 }), Type.Unknown(), {
  description: `JSON object, nested at most ${LIMITS.objectDepth} levels`,
});

/** Fields a client may send. `additionalProperties: false`: unknown fields are rejected. */
export const EventInputProperties = {
  tenant_id: Type.Optional(
    Type.String({
      pattern: TENANT_ID_PATTERN,
      description:
        "Tenant the event belongs to. Defaults to the caller's tenant; required for platform admins.",
    }),
  ),
  id: Type.Optional(
    Type.String({
      format: 'uuid',
      description: 'Client-supplied UUID for idempotency. The server assigns a UUIDv7 when absent.',
    }),
  ),
  occurred_at: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'RFC 3339 timestamp with offset. Defaults to the time the server received it.',
      examples: ['2026-11-28T10:15:00+01:00'],
    }),
  ),
  user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  session_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  action: Type.String({
    pattern: ACTION_PATTERN,
    description: `One of ${STANDARD_ACTIONS.join(', ')}, or another uppercase verb`,
    examples: ['UPDATE'],
  }),
  resource_type: Type.String({ minLength: 1, maxLength: 128, examples: ['order'] }),
  resource_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  severity: Type.Optional(Severity),
  ip_address: Type.Optional(Type.String({ format: 'ip', description: 'IPv4 or IPv6 address' })),
  user_agent: Type.Optional(Type.String({ maxLength: 1024 })),
  message: Type.Optional(Type.String({ maxLength: 16 * 1024 })),
  before: Type.Optional(JsonObject),
  after: Type.Optional(JsonObject),
  metadata: Type.Optional(JsonObject),
  request_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
};

export const EventInput = Type.Object(EventInputProperties, {
  additionalProperties: false,
  $id: 'EventInput',
  examples: [
    {
      id: '0193a3a5-8c1e-7a2b-9c3d-4e5f60718293',
      occurred_at: '2026-11-28T10:15:00+01:00',
      user_id: 'u-42',
      action: 'UPDATE',
      resource_type: 'order',
      resource_id: 'o-1001',
      severity: 'INFO',
      ip_address: '203.0.113.7',
      message: 'changed shipping address',
      before: { city: 'Lyon' },
      after: { city: 'Paris' },
      request_id: 'req-7f3a',
    },
  ],
});
export type EventInput = Static<typeof EventInput>;

export const BulkInput = Type.Object(
  { events: Type.Array(Type.Unknown(), { minItems: 1, maxItems: LIMITS.bulkEvents }) },
  { additionalProperties: false },
);

/** An event after ingest: every defaulted field is filled in. This is what the queues carry. */
const {
  tenant_id: _t,
  id: _i,
  occurred_at: _o,
  severity: _s,
  ...OtherInputProperties
} = EventInputProperties;

export const StagedEvent = Type.Object(
  {
    ...OtherInputProperties,
    tenant_id: TenantId,
    id: Type.String({ format: 'uuid' }),
    occurred_at: Type.String({ format: 'date-time' }),
    received_at: Type.String({ format: 'date-time' }),
    severity: Severity,
  },
  { additionalProperties: false },
);
export type StagedEvent = Static<typeof StagedEvent>;

/** An event as read back (search, get, export, stream): decrypted and shaped like the input. */
export const StoredEvent = Type.Object(
  {
    ...OtherInputProperties,
    tenant_id: TenantId,
    id: Type.String({ format: 'uuid' }),
    sequence: Type.String({ pattern: '^[0-9]+$', description: 'Gapless per-tenant sequence number' }),
    occurred_at: Type.String({ format: 'date-time' }),
    received_at: Type.String({ format: 'date-time' }),
    severity: Severity,
  },
  { $id: 'StoredEvent' },
);
export type StoredEvent = Static<typeof StoredEvent>;

/** The encrypted fields; everything else is stored as plain columns. */
export const SEALED_FIELDS = ['before', 'after', 'metadata'] as const;
export type SealedFields = Pick<StagedEvent, (typeof SEALED_FIELDS)[number]>;
