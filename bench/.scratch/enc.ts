import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { seal } from '../../infra/crypto/aead.js';
import { metaToken } from '../../infra/crypto/tenant-keys.js';
import { uuidv7 } from '../../infra/uuid.js';
import { metadataTerms } from '../../stages/encrypt/metadata-terms.js';
import { eventGenerator } from '../lib/events.js';

const next = eventGenerator(1);
const N = 20000;
const evs = Array.from({ length: N }, next);
const key = randomBytes(32),
  ik = randomBytes(32);
let t = performance.now();
for (const e of evs)
  seal(
    key,
    Buffer.from(JSON.stringify({ before: e.before, after: e.after, metadata: e.metadata })),
    Buffer.from('t/x'),
  );
console.log('seal', (((performance.now() - t) * 1000) / N).toFixed(1), 'us/event');
t = performance.now();
for (const e of evs) {
  const terms = metadataTerms(e.metadata);
  terms.pairs.map(([k, v]) => metaToken(ik, k, v));
}
console.log('meta tokens', (((performance.now() - t) * 1000) / N).toFixed(1), 'us/event');
t = performance.now();
for (let i = 0; i < N; i++) uuidv7();
console.log('uuidv7', (((performance.now() - t) * 1000) / N).toFixed(1), 'us/event');
t = performance.now();
for (let i = 0; i < N; i++) JSON.parse(JSON.stringify(evs[i]));
console.log('json roundtrip', (((performance.now() - t) * 1000) / N).toFixed(1), 'us/event');
