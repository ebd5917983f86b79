import { type Batch, PersistedEvent } from '../../infra/schema/batch.js';
import type { Stage } from '../stage.js';

/**
 * The index slot. With PostgreSQL full-text search (the default) persisted rows are already
 * searchable and persist sends nothing here; with OpenSearch configured, this stage bulk-indexes
 * what persist forwards.
 */
export const indexStage: Stage<PersistedEvent, never> = {
  name: 'index',
  input: 'index',
  output: undefined,
  inputEvent: PersistedEvent,
  async handle(_batches: Batch<PersistedEvent>[]) {
    return [];
  },
};
