import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { configDocs } from '../bin/config-docs.js';
import { ConfigSchema } from '../infra/config.js';

describe('documentation stays true', () => {
  it('every config variable has a description, and README and .env.example are current', () => {
    const docs = configDocs();
    expect(docs.map((d) => d.name)).toEqual(Object.keys(ConfigSchema.properties));
    for (const d of docs) expect(d.description, d.name).not.toBe('');
    // Exits non-zero (and throws here) when either file is stale.
    execFileSync('npx', ['tsx', 'bin/config-docs.ts', '--check'], { stdio: 'pipe' });
  });
});
