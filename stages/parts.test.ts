import { describe, expect, it } from 'vitest';
import { runPipelined, type Step, splitIntoParts } from './parts.js';

interface Msg {
  name: string;
  events: number;
}
const msg = (name: string, events: number): Msg => ({ name, events });
const label = (part: Msg[]) => part.map((m) => m.name).join(',');
const split = (items: Msg[]) => splitIntoParts(items, (m) => m.events, 1000);

describe('splitIntoParts', () => {
  it('cuts items, in order, into parts of at least the target, the last one smaller', () => {
    const items = [msg('a', 600), msg('b', 10), msg('c', 600), msg('d', 1200), msg('e', 5)];
    expect(split(items).map(label)).toEqual(['a,b,c', 'd', 'e']);
  });

  it('keeps many small messages in one part', () => {
    expect(split(Array.from({ length: 50 }, (_, i) => msg(`m${i}`, 1)))).toHaveLength(1);
  });
});

/** Steps that record when each part enters and leaves them, and can be told to fail. */
function recorder(stepCount: number, fail?: (step: number, part: string) => boolean) {
  const log: string[] = [];
  const active = new Map<number, number>();
  let maxInOneStep = 0;
  const steps: Step<Msg, string>[] = Array.from({ length: stepCount }, (_, i) => async (value, part) => {
    active.set(i, (active.get(i) ?? 0) + 1);
    maxInOneStep = Math.max(maxInOneStep, active.get(i)!);
    log.push(`start ${i} ${label(part)}`);
    await new Promise((r) => setTimeout(r, 5));
    active.set(i, active.get(i)! - 1);
    if (fail?.(i, label(part))) throw new Error(`step ${i} failed on ${label(part)}`);
    log.push(`end ${i} ${label(part)}`);
    return value;
  });
  return { log, steps, maxInOneStep: () => maxInOneStep };
}

describe('runPipelined', () => {
  it('passes every part through every step in order, overlapping different steps', async () => {
    const parts = split([msg('a', 1000), msg('b', 1000), msg('c', 1000)]);
    const { log, steps, maxInOneStep } = recorder(2);
    const values: string[] = [];
    steps.push(async (value) => {
      values.push(value);
      return value;
    });
    const { finished, err } = await runPipelined(parts, label, steps);
    expect(err).toBeUndefined();
    expect(finished).toBe(3);
    expect(values).toEqual(['a', 'b', 'c']);
    for (const step of [0, 1]) {
      expect(log.filter((l) => l.startsWith(`start ${step}`))).toEqual([
        `start ${step} a`,
        `start ${step} b`,
        `start ${step} c`,
      ]);
    }
    // b enters step 0 before a has left step 1: the steps overlap ...
    expect(log.indexOf('start 0 b')).toBeLessThan(log.indexOf('end 1 a'));
    // ... but a step never holds two parts at once.
    expect(maxInOneStep()).toBe(1);
  });

  it('stops every later part at the first failure; earlier parts finish', async () => {
    const parts = split([msg('a', 1000), msg('b', 1000), msg('c', 1000)]);
    const { log, steps } = recorder(2, (step, part) => step === 1 && part === 'b');
    const { finished, err } = await runPipelined(parts, label, steps);
    expect(finished).toBe(1);
    expect((err as Error).message).toBe('step 1 failed on b');
    expect(log).toContain('end 1 a');
    expect(log).not.toContain('start 1 c');
  });

  it('finishes nothing when the first part fails in the first step', async () => {
    const parts = split([msg('a', 1000), msg('b', 1000)]);
    const { log, steps } = recorder(3, (step, part) => step === 0 && part === 'a');
    const { finished } = await runPipelined(parts, label, steps);
    expect(finished).toBe(0);
    expect(log.filter((l) => l.includes(' b'))).toEqual([]);
  });
});
