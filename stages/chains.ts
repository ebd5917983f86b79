import type { Config } from '../infra/config.js';
import { encryptStage } from './encrypt/handler.js';
import { indexStage } from './index/handler.js';
import { maskStage } from './mask/handler.js';
import { persistStage } from './persist/handler.js';
import type { Stage, StageName } from './stage.js';

/**
 * The stages named, in pipeline order, grouped into chains of consecutive stages: each chain is
 * one runner that passes batches from stage to stage in memory (no queue hop between them), so
 * `mask,encrypt,persist` in one process is one chain. Without OpenSearch, persist forwards nothing
 * and the index stage has no queue traffic, so it is left out.
 */
export function stageChains(config: Config, names: readonly string[]): Stage[][] {
  const has = (name: StageName) => names.includes(name);
  const searchIndex = Boolean(config.OPENSEARCH_URL);
  const stages: Stage[] = [];
  if (has('mask')) stages.push(maskStage(config) as Stage);
  if (has('encrypt')) stages.push(encryptStage as Stage);
  if (has('persist')) stages.push(persistStage(searchIndex) as Stage);
  if (has('index') && searchIndex) stages.push(indexStage as Stage);

  const chains: Stage[][] = [];
  for (const stage of stages) {
    const current = chains[chains.length - 1];
    const tail = current?.[current.length - 1];
    if (current && tail?.output === stage.input) current.push(stage);
    else chains.push([stage]);
  }
  return chains;
}
