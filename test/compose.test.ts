import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DAEMONS } from '../bin/compose.js';
import { ConfigSchema, configureFromEnv } from '../infra/config.js';

/**
 * docker-compose.yml cannot run here (no Docker engine), so this keeps it honest instead: every
 * daemon is a service of our image, and each one's environment is one our configuration accepts,
 * using only the variable names the README documents (plus the AWS SDK's and Node's own).
 */
interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
}

const compose = parse(fs.readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8'), {
  merge: true,
}) as { services: Record<string, Service> };
const ours = Object.entries(compose.services).filter(([, s]) => s.image === 'auditlog:local');
const FOREIGN = /^(AWS_[A-Z0-9_]+|NODE_OPTIONS)$/;

describe('docker-compose.yml', () => {
  it('runs every daemon as its own service of the one image', () => {
    const commands = ours.map(([, s]) => s.command?.join(' '));
    expect(new Set(commands)).toEqual(new Set(DAEMONS));
  });

  it.each(ours)('%s: its environment is valid configuration with documented names', (_name, service) => {
    const env = service.environment ?? {};
    const known = new Set(Object.keys(ConfigSchema.properties));
    const unknown = Object.keys(env).filter((k) => !known.has(k) && !FOREIGN.test(k));
    expect(unknown).toEqual([]);
    const config = configureFromEnv(env);
    expect(config.TRANSPORT).toBe('sqs');
    expect(config.DATABASE_URL).toMatch(/^postgres:\/\/.+@postgres:5432\//);
  });
});
