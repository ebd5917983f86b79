/**
 * `npm run postman [-- --url http://host:port] [--out file]` writes a Postman v2.1 collection
 * generated from the service's OpenAPI document (default `docs/auditlog.postman_collection.json`).
 * With `--url` it fetches `/api/v1/openapi.json` from a running service; without it, it starts the
 * HTTP daemons in-process on a loopback port (against `DATABASE_URL`, or a throwaway embedded
 * PostgreSQL so a running dev instance is never touched), reads the document and stops them.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';

/** The parts of an OpenAPI 3 document the conversion reads. */
export interface OpenApiDocument {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
}

interface OpenApiParameter {
  name: string;
  in: 'query' | 'path' | 'header' | 'cookie';
  required?: boolean;
  description?: string;
  schema?: { default?: unknown; example?: unknown; examples?: unknown[] };
}

interface OpenApiOperation {
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: OpenApiParameter[];
  requestBody?: { content?: Record<string, { example?: unknown; schema?: unknown }> };
}

/** Postman Collection Format v2.1 (only what we emit). */
export interface PostmanRequestItem {
  name: string;
  request: {
    method: string;
    description?: string;
    header: { key: string; value: string }[];
    url: {
      raw: string;
      host: string[];
      path: string[];
      query?: { key: string; value: string; description?: string; disabled: boolean }[];
      variable?: { key: string; value: string; description?: string }[];
    };
    body?: { mode: 'raw'; raw: string; options: { raw: { language: 'json' } } };
  };
  response: [];
}

export interface PostmanCollection {
  info: { name: string; description?: string; schema: string };
  auth: { type: 'bearer'; bearer: { key: string; value: string; type: string }[] };
  variable: { key: string; value: string; description?: string }[];
  item: { name: string; item: PostmanRequestItem[] }[];
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
export const POSTMAN_SCHEMA = 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json';

const sample = (p: OpenApiParameter): string => {
  const v = p.schema?.example ?? p.schema?.examples?.[0] ?? p.schema?.default;
  return v === undefined ? '' : String(v);
};

/**
 * One request per OpenAPI operation, in folders by tag, authenticated with the collection's
 * bearer `{{token}}` against `{{baseUrl}}`. Optional query parameters are listed but disabled;
 * the JSON body is the operation's example.
 */
export function toPostmanCollection(doc: OpenApiDocument): PostmanCollection {
  const folders = new Map<string, PostmanRequestItem[]>();
  for (const [route, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      if (!METHODS.includes(method)) continue;
      const segments = route
        .split('/')
        .filter(Boolean)
        .map((s) => s.replace(/^\{(.+)\}$/, ':$1'));
      const params = op.parameters ?? [];
      const query = params
        .filter((p) => p.in === 'query')
        .map((p) => ({
          key: p.name,
          value: sample(p),
          ...(p.description ? { description: p.description } : {}),
          disabled: !p.required,
        }));
      const variable = params
        .filter((p) => p.in === 'path')
        .map((p) => ({
          key: p.name,
          value: sample(p),
          ...(p.description ? { description: p.description } : {}),
        }));
      const enabled = query.filter((q) => !q.disabled).map((q) => `${q.key}=${q.value}`);
      const json = op.requestBody?.content?.['application/json'];
      const item: PostmanRequestItem = {
        name: op.summary ?? `${method.toUpperCase()} ${route}`,
        request: {
          method: method.toUpperCase(),
          ...(op.description ? { description: op.description } : {}),
          header: json ? [{ key: 'Content-Type', value: 'application/json' }] : [],
          url: {
            raw: `{{baseUrl}}/${segments.join('/')}${enabled.length ? `?${enabled.join('&')}` : ''}`,
            host: ['{{baseUrl}}'],
            path: segments,
            ...(query.length ? { query } : {}),
            ...(variable.length ? { variable } : {}),
          },
          ...(json
            ? {
                body: {
                  mode: 'raw' as const,
                  raw: JSON.stringify(json.example ?? {}, null, 2),
                  options: { raw: { language: 'json' as const } },
                },
              }
            : {}),
        },
        response: [],
      };
      const tag = op.tags?.[0] ?? 'other';
      const folder = folders.get(tag);
      if (folder) folder.push(item);
      else folders.set(tag, [item]);
    }
  }
  return {
    info: {
      name: doc.info.title,
      ...(doc.info.description ? { description: doc.info.description } : {}),
      schema: POSTMAN_SCHEMA,
    },
    auth: { type: 'bearer', bearer: [{ key: 'token', value: '{{token}}', type: 'string' }] },
    variable: [
      { key: 'baseUrl', value: 'http://127.0.0.1:8080', description: 'Service address' },
      { key: 'token', value: '', description: 'A JWT, e.g. from `npm run token`' },
    ],
    item: [...folders].map(([name, item]) => ({ name, item })),
  };
}

async function fetchDocument(base: string): Promise<OpenApiDocument> {
  const res = await fetch(`${base.replace(/\/$/, '')}/api/v1/openapi.json`);
  if (!res.ok) throw new Error(`GET /api/v1/openapi.json answered ${res.status}`);
  return (await res.json()) as OpenApiDocument;
}

/** A free loopback port for the throwaway embedded PostgreSQL. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts the HTTP daemons in-process on a loopback port, reads the document, stops them. */
async function inProcessDocument(): Promise<OpenApiDocument> {
  const { configureFromEnv } = await import('../infra/config.js');
  const { createContext } = await import('../infra/context.js');
  const { startDaemons } = await import('./compose.js');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auditlog-postman-'));
  try {
    const config = configureFromEnv({
      ...process.env,
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      EMBEDDED_PG_PORT: String(await freePort()),
    });
    const ctx = await createContext(config, { daemon: 'postman', log: pino({ level: 'silent' }) });
    let running: Awaited<ReturnType<typeof startDaemons>>;
    try {
      running = await startDaemons(ctx, ['ingest', 'query', 'stream']);
    } catch (err) {
      await ctx.close();
      throw err;
    }
    try {
      return await fetchDocument(running.url);
    } finally {
      await running.stop();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const url = arg('--url');
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const out = path.resolve(arg('--out') ?? path.join(root, 'docs', 'auditlog.postman_collection.json'));
  const doc = url ? await fetchDocument(url) : await inProcessDocument();
  const collection = toPostmanCollection(doc);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(collection, null, 2)}\n`);
  // The file is committed and `npm run lint` checks it: format it the way biome wants, when the
  // dev dependency is installed (it is wherever `npm run postman` runs from a checkout).
  const biome = path.join(root, 'node_modules', '.bin', 'biome');
  if (fs.existsSync(biome) && !path.relative(root, out).startsWith('..')) {
    const formatted = spawnSync(biome, ['format', '--write', out], { stdio: 'ignore' });
    if (formatted.status !== 0) throw new Error(`biome format failed on ${out}`);
  }
  const requests = collection.item.reduce((n, f) => n + f.item.length, 0);
  console.log(`wrote ${requests} requests in ${collection.item.length} folders to ${out}`);
}

// Run only as a script: importing this module (the test does) has no side effects.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
