import type { EventRow, SealedOpener } from './decode.js';

/** See `keyedFeed`. */
export interface KeyedFeed {
  /** Hands `row` on now if its data key is loaded (and no earlier row waits), else keeps it. */
  push(row: EventRow): void;
  /** Loads the keys the kept rows need, then hands them on, in order. */
  flush(): Promise<void>;
}

/**
 * Hands rows to `emit` in the order they are pushed, each with its opened sealed plaintext,
 * synchronously while their data keys are loaded (the usual case: an export's rows share a few
 * keys), so rows can be pushed straight from the database driver without keeping them. A row
 * whose key is not loaded yet waits, with every row after it, for `flush`.
 */
export function keyedFeed(
  opener: SealedOpener,
  emit: (row: EventRow, sealed: string | undefined) => void,
): KeyedFeed {
  let waiting: EventRow[] = [];
  return {
    push(row) {
      if (waiting.length === 0 && opener.ready(row)) emit(row, opener.open(row));
      else waiting.push(row);
    },
    async flush() {
      if (waiting.length === 0) return;
      const rows = waiting;
      waiting = [];
      await opener.load(rows);
      for (const row of rows) emit(row, opener.open(row));
    },
  };
}
