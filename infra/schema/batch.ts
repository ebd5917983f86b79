import Type, { type Static, type TSchema } from 'typebox';
import { StagedEvent, TenantId } from './event.js';
import { createAjv } from './validate.js';

/** An event after the encrypt stage: before/after/metadata exist only inside `sealed`. */
const { before: _b, after: _a, metadata: _m, ...plain } = StagedEvent.properties;
export const SealedEvent = Type.Object(
  {
    ...plain,
    key_id: Type.Integer({ minimum: 1 }),
    /** base64 of AES-256-GCM(iv|tag|ct) over {before, after, metadata}; absent when all three are. */
    sealed: Type.Optional(Type.String()),
    /** Blind-index tokens of top-level metadata `key=value` pairs. */
    meta_idx: Type.Array(Type.String({ maxLength: 64 })),
    /** Masked metadata values as text, for the full-text index only. */
    meta_text: Type.String(),
  },
  { additionalProperties: false },
);
export type SealedEvent = Static<typeof SealedEvent>;

/** After persist: the stored event with its tenant sequence number, for the index hop. */
export const PersistedEvent = Type.Object(
  { ...SealedEvent.properties, sequence: Type.String({ pattern: '^[0-9]+$' }) },
  { additionalProperties: false },
);
export type PersistedEvent = Static<typeof PersistedEvent>;

/** The body of every queue message: one tenant's events on their way to the next stage. */
export function batchOf<T extends TSchema>(event: T) {
  return Type.Object(
    { v: Type.Literal(1), tenant_id: TenantId, events: Type.Array(event, { minItems: 1 }) },
    { additionalProperties: false },
  );
}

export interface Batch<E> {
  v: 1;
  tenant_id: string;
  events: E[];
}

const ajv = createAjv();

/** Parses and validates a queue body: nothing unvalidated crosses a queue boundary. */
export function batchParser<E>(event: TSchema): (body: string) => Batch<E> {
  const check = ajv.compile(batchOf(event));
  return (body) => {
    const value: unknown = JSON.parse(body);
    if (!check(value)) {
      const first = check.errors?.[0];
      throw new Error(`invalid queue message: ${first?.instancePath} ${first?.message}`);
    }
    return value as Batch<E>;
  };
}
