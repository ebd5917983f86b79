import { describe, expect, it } from 'vitest';
import type { Principal } from '../infra/auth/principal.js';
import { HttpError } from '../infra/http/errors.js';
import { batchOf, batchParser } from '../infra/schema/batch.js';
import { type EventInput, StagedEvent } from '../infra/schema/event.js';
import { createAjv } from '../infra/schema/validate.js';
import { serializedMessages } from '../infra/transport/split.js';
import { stagedJson, stageEvents } from './stage-events.js';

const writer: Principal = { sub: 'svc', tenant: 'acme', role: 'admin', platform: false };
const platform: Principal = { sub: 'root', tenant: '*', role: 'admin', platform: true };
const checkStaged = createAjv().compile(batchOf(StagedEvent));

const fields = {
  tenant_id: 'acme',
  id: '0190a000-0000-7000-8000-00000000000a',
  occurred_at: '2026-12-07T10:00:00.123456Z',
  received_at: '2026-12-07T10:00:01.000Z',
  severity: 'INFO' as const,
};
const base: EventInput = {
  action: 'UPDATE',
  resource_type: 'invoice',
  message: 'quote " backslash \\ tab \t line \n emoji 🎉 \u2028',
  metadata: { nested: { a: [1, 'two', null, { '3': true }] }, '10': 'numeric key first' },
};

/** Every combination of the staged fields present in the input, each equal or not to its staged value. */
function variants(): EventInput[] {
  const given: Partial<Record<keyof typeof fields, string[]>> = {
    tenant_id: ['acme'],
    id: [fields.id, fields.id.toUpperCase()],
    occurred_at: [fields.occurred_at, '2026-12-07T11:00:00.123456+01:00'],
    severity: ['INFO', 'CRITICAL'],
  };
  let out: Record<string, unknown>[] = [{ ...base }];
  for (const [key, values] of Object.entries(given)) {
    out = out.flatMap((v) => [v, ...values!.map((value) => ({ ...v, [key]: value }))]);
  }
  // Key order of the input must not matter either.
  out.push({ severity: 'INFO', ...base, id: fields.id });
  return out as EventInput[];
}

describe('stagedJson', () => {
  it('is the JSON of the staged event for every mix of given, equal and differing staged fields', () => {
    for (const input of variants()) {
      const staged = Object.assign({}, input, fields);
      const json = stagedJson(input, JSON.stringify(input), staged);
      expect(JSON.parse(json)).toStrictEqual(JSON.parse(JSON.stringify(staged)));
      // No key appears twice (JSON.parse would hide that).
      const keys = [...json.matchAll(/"(tenant_id|id|occurred_at|received_at|severity)":/g)].map((m) => m[1]);
      expect(new Set(keys).size).toBe(keys.length);
    }
  });

  it("reuses the input's JSON as it is when nothing is added", () => {
    const input = { ...base, ...fields } as unknown as EventInput;
    const json = JSON.stringify(input);
    expect(stagedJson(input, json, fields)).toBe(json);
  });
});

describe('stageEvents', () => {
  it('serializes each event as the StagedEvent the mask stage accepts, grouped by tenant', () => {
    const inputs = [
      { ...base },
      { ...base, tenant_id: 'other', id: fields.id.toUpperCase(), occurred_at: '2026-12-07T10:00:00+02:00' },
      { ...base, tenant_id: 'acme', severity: 'ERROR' },
    ];
    const batches = stageEvents(platform, [{ ...inputs[0], tenant_id: 'acme' }, inputs[1], inputs[2]], true);
    expect(batches.map((b) => [b.tenant_id, b.events.length])).toEqual([
      ['acme', 2],
      ['other', 1],
    ]);
    const parse = batchParser<StagedEvent>(StagedEvent);
    for (const b of batches) {
      for (const m of serializedMessages('mask', b, 512 * 1024)) {
        const batch = parse(m.body);
        expect(checkStaged(batch)).toBe(true);
        expect(batch.events.map((e) => e.id)).toEqual(b.events.map((e) => e.id));
      }
    }
    const other = JSON.parse(batches[1]!.events[0]!.json) as StagedEvent;
    expect(other.id).toBe(fields.id);
    expect(other.occurred_at).toBe('2026-12-07T08:00:00Z');
    expect(JSON.parse(batches[0]!.events[1]!.json).severity).toBe('ERROR');
  });

  it('fills in the id, times, tenant and severity of a minimal event', () => {
    const [batch] = stageEvents(writer, [{ action: 'LOGIN', resource_type: 'session' }], false);
    const event = JSON.parse(batch!.events[0]!.json) as StagedEvent;
    expect(event).toMatchObject({ tenant_id: 'acme', severity: 'INFO', action: 'LOGIN' });
    expect(event.id).toBe(batch!.events[0]!.id);
    expect(event.occurred_at).toBe(event.received_at);
  });

  it('splits serialized events into messages under the size limit, in order', () => {
    const events = Array.from({ length: 40 }, (_, i) => ({ ...base, message: `${i} ${'x'.repeat(2000)}` }));
    const [batch] = stageEvents(writer, events, true);
    const messages = serializedMessages('mask', batch!, 20_000);
    expect(messages.length).toBeGreaterThan(1);
    const parse = batchParser<StagedEvent>(StagedEvent);
    const ids = messages.flatMap((m) => {
      expect(Buffer.byteLength(m.body)).toBeLessThanOrEqual(20_000);
      return parse(m.body).events.map((e) => e.id);
    });
    expect(ids).toEqual(batch!.events.map((e) => e.id));
  });

  it('rejects the whole request, listing every bad item, before serializing anything', () => {
    const call = () => stageEvents(writer, [{ ...base }, { action: 'bad' }, { ...base, extra: 1 }], true);
    expect(call).toThrow(HttpError);
    try {
      call();
    } catch (err) {
      const details = (err as HttpError).details as { index: number }[];
      expect([...new Set(details.map((d) => d.index))]).toEqual([1, 2]);
    }
  });
});
