import { setImmediate as nextTurn } from 'node:timers/promises';

/** Items handled between two yields to the event loop: a few ms of stage work per slice. */
export const SLICE_ITEMS = 64;

/**
 * `items.map(fn)`, yielding to the event loop after every `slice` items. A stage handles
 * thousands of events per batch; in a process that also serves HTTP (`npm start` runs every
 * daemon in one), a single uninterrupted pass would hold every request behind it for hundreds of
 * milliseconds. Yielding bounds that wait by one slice.
 */
export async function mapInSlices<T, R>(
  items: readonly T[],
  fn: (item: T) => R,
  slice = SLICE_ITEMS,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && i % slice === 0) await nextTurn();
    out[i] = fn(items[i]!);
  }
  return out;
}
