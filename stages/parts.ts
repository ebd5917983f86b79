/** Splits items, in order, into parts of at least `target` events (the last one may be smaller). */
export function splitIntoParts<T>(items: T[], eventsOf: (item: T) => number, target: number): T[][] {
  const parts: T[][] = [];
  let current: T[] = [];
  let events = 0;
  for (const item of items) {
    current.push(item);
    events += eventsOf(item);
    if (events >= target) {
      parts.push(current);
      current = [];
      events = 0;
    }
  }
  if (current.length > 0) parts.push(current);
  return parts;
}

/** A step of the pipeline: takes a part's value from the previous step, returns the next one. */
export type Step<T, V> = (value: V, part: T[]) => Promise<V>;

/**
 * Runs the parts through `steps` as a pipeline: every step takes the parts one at a time, in
 * order, so part k+1 can be in step 1 (say, encrypted in this process) while part k is in step 2
 * (persisted by the database). One part per step at a time is deliberate: two persist
 * transactions at once measured more database CPU per event (index contention) than they saved.
 *
 * After a part fails, no later part takes another step (earlier parts finish theirs), so the
 * finished parts are always a prefix. Returns how many parts finished, and the first error.
 */
export async function runPipelined<T, V>(
  parts: T[][],
  start: (part: T[]) => V,
  steps: Step<T, V>[],
): Promise<{ finished: number; err?: unknown }> {
  let failed: { at: number; err: unknown } | undefined;
  let finished = 0;
  /** Per step: settles when the latest part has left it. */
  let gates: Promise<void>[] = steps.map(() => Promise.resolve());
  const runs = parts.map(async (part, k) => {
    const waitFor = gates;
    const leave: (() => void)[] = [];
    gates = steps.map(() => new Promise<void>((resolve) => leave.push(resolve)));
    let value = start(part);
    try {
      for (const [i, step] of steps.entries()) {
        await waitFor[i];
        if (failed && failed.at < k) return;
        try {
          value = await step(value, part);
        } catch (err) {
          // Recorded before the gate opens, so the next part sees it and stops.
          if (!failed || k < failed.at) failed = { at: k, err };
          return;
        }
        leave[i]!();
      }
      finished = k + 1;
    } finally {
      for (const l of leave) l();
    }
  });
  await Promise.all(runs);
  return { finished, err: failed?.err };
}
