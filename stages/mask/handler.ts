import fs from 'node:fs';
import type { Config } from '../../infra/config.js';
import type { Batch } from '../../infra/schema/batch.js';
import { StagedEvent } from '../../infra/schema/event.js';
import { mapInSlices } from '../../infra/slices.js';
import type { Stage } from '../stage.js';
import { buildMaskRules, createMasker } from './rules.js';

/** Builds the mask stage from configuration: default rules, extra keys, optional rules file. */
export function maskStage(config: Config): Stage<StagedEvent, StagedEvent> {
  const file = config.MASK_RULES_FILE
    ? JSON.parse(fs.readFileSync(config.MASK_RULES_FILE, 'utf8'))
    : undefined;
  const extraKeys = config.MASK_EXTRA_KEYS.split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  const mask = createMasker(buildMaskRules(extraKeys, file));
  return {
    name: 'mask',
    input: 'mask',
    output: 'encrypt',
    inputEvent: StagedEvent,
    async handle(batches: Batch<StagedEvent>[]) {
      const out: Batch<StagedEvent>[] = [];
      for (const b of batches) out.push({ ...b, events: await mapInSlices(b.events, mask) });
      return out;
    },
  };
}
