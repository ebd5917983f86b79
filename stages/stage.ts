import type { TSchema } from 'typebox';
import type { Context } from '../infra/context.js';
import type { Batch } from '../infra/schema/batch.js';
import type { QueueName } from '../infra/transport/types.js';

export const STAGE_NAMES = ['mask', 'encrypt', 'persist', 'index'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/**
 * A stage is a pure batch handler: it takes batches (each one tenant's events, in queue order)
 * and returns the batches for the next hop. Receiving, visibility, retries, dead-lettering,
 * metrics and shutdown belong to the shared runner (`runner.ts`), never to a stage.
 */
export interface Stage<In = unknown, Out = unknown> {
  name: StageName;
  /** The queue this stage consumes. */
  input: QueueName;
  /** The queue its output goes to, or none when it is the last hop. */
  output: QueueName | undefined;
  /** Schema of one event in the input batches, checked at the queue boundary. */
  inputEvent: TSchema;
  handle(batches: Batch<In>[], ctx: Context): Promise<Batch<Out>[]>;
}
