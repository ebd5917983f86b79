/**
 * Our schemas are JSON Schema, where `examples` is an array; an OpenAPI 3.0 Schema Object only
 * knows a single `example`. @fastify/swagger converts the schemas it generates responses from,
 * but passes a response given in the `content` form (one schema per media type, e.g. the export)
 * and response header schemas through untouched, which makes the document invalid. This pass
 * converts what is left: `examples: [a, …]` on a schema becomes `example: a`.
 */
export function schemaExamplesToExample<T>(openapiObject: T): T {
  const visitSchema = (schema: unknown): void => {
    if (!schema || typeof schema !== 'object') return;
    const s = schema as Record<string, unknown>;
    if (Array.isArray(s.examples)) {
      if (s.example === undefined && s.examples.length > 0) s.example = s.examples[0];
      delete s.examples;
    }
    for (const key of ['properties', 'patternProperties'] as const) {
      const children = s[key];
      if (children && typeof children === 'object')
        for (const child of Object.values(children)) visitSchema(child);
    }
    for (const key of ['items', 'additionalProperties', 'not'] as const) visitSchema(s[key]);
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      const list = s[key];
      if (Array.isArray(list)) for (const child of list) visitSchema(child);
    }
  };
  /** `content` and `headers` maps of a response or request body: their `schema`s are Schema Objects. */
  const visitHolder = (holder: unknown): void => {
    if (!holder || typeof holder !== 'object') return;
    const h = holder as {
      content?: Record<string, { schema?: unknown }>;
      headers?: Record<string, { schema?: unknown }>;
    };
    for (const media of Object.values(h.content ?? {})) visitSchema(media?.schema);
    for (const header of Object.values(h.headers ?? {})) visitSchema(header?.schema);
  };
  const paths = (openapiObject as { paths?: Record<string, Record<string, unknown>> }).paths ?? {};
  for (const operations of Object.values(paths)) {
    for (const op of Object.values(operations)) {
      if (!op || typeof op !== 'object') continue;
      const o = op as { requestBody?: unknown; responses?: Record<string, unknown> };
      visitHolder(o.requestBody);
      for (const response of Object.values(o.responses ?? {})) visitHolder(response);
    }
  }
  return openapiObject;
}
