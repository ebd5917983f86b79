import { type EventRow, loadedKey, type SealedOpener } from './decode.js';
import type { DecryptThreads, SealedItem } from './decrypt-threads.js';

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

/**
 * Rows per request to the decrypt threads: an export chunk's first rows are being opened while
 * the rest still arrive from the database and earlier ones are formatted.
 */
export const DECRYPT_GROUP_ROWS = 250;

const ignore = () => {};

/**
 * `keyedFeed` with the sealed values opened on `threads`: rows are sent in groups of
 * `DECRYPT_GROUP_ROWS` and handed to `emit` in push order as their group comes back, so this
 * event loop parses and formats while a decrypt thread opens. `flush` sends the last group and resolves once
 * every pushed row is emitted; it rejects if any group failed to open (no row after the failed
 * group is emitted).
 */
export function threadedFeed(
  threads: DecryptThreads,
  opener: SealedOpener,
  emit: (row: EventRow, sealed: string | undefined) => void,
): KeyedFeed {
  let group: EventRow[] = [];
  let emitted = Promise.resolve();
  const send = (rows: EventRow[]) => {
    const opened = opener.load(rows).then(() => {
      const items: SealedItem[] = [];
      for (const row of rows) {
        if (row.sealed) {
          items.push({
            sealed: row.sealed,
            key: loadedKey(row, opener.key(row)),
            tenantId: row.tenant_id,
            eventId: row.id,
          });
        }
      }
      return items.length > 0 ? threads.open(items) : [];
    });
    opened.catch(ignore); // observed through `emitted`
    emitted = emitted.then(async () => {
      const texts = await opened;
      let i = 0;
      for (const row of rows) emit(row, row.sealed ? texts[i++] : undefined);
    });
    emitted.catch(ignore); // observed by `flush`, unless the export already failed elsewhere
  };
  return {
    push(row) {
      group.push(row);
      if (group.length < DECRYPT_GROUP_ROWS) return;
      send(group);
      group = [];
    },
    async flush() {
      if (group.length > 0) send(group);
      group = [];
      await emitted;
    },
  };
}
