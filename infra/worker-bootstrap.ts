import path from 'node:path';

/**
 * Source for `new Worker(source, { eval: true })` that starts the module `name` next to
 * `hostUrl` (the caller's `import.meta.url`): `.ts` under tsx, `.js` if ever compiled. A worker
 * does not inherit the tsx loader of `node --import tsx`, so under tsx it registers it first.
 */
export function workerBootstrap(hostUrl: string, name: string): string {
  const here = new URL(hostUrl);
  const entry = new URL(`./${name}${path.extname(here.pathname)}`, here).href;
  if (!entry.endsWith('.ts')) return `import(${JSON.stringify(entry)});`;
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
}
