import { luhnValid } from './luhn.js';

const MIN_DIGITS = 13;
const MAX_DIGITS = 19;

/** `[CARD ****1234]`: only the last four digits survive, as on a printed receipt. */
export function cardPlaceholder(digits: string): string {
  return `[CARD ****${digits.slice(-4)}]`;
}

/**
 * Masks the card numbers inside `run`, a maximal run of ASCII digit groups separated by single
 * spaces or dashes (e.g. `1234-5678 4111 1111 1111 1111`).
 *
 * A card is a window of consecutive groups holding 13–19 digits in total that passes Luhn, and is
 * either one unseparated group, or groups of 4–6 digits followed by a last group of 1–7 digits
 * (4-4-4-4, 4-6-5, 4-4-4-4-3, ...). The group shape keeps lists of small numbers
 * (`1 2 3 4 ...`) from being read as cards; searching windows instead of the whole run catches a
 * card written next to other numbers. A single group longer than 19 digits is never a card, so
 * long ids and hashes are left alone. Windows are taken left to right, longest first.
 */
export function maskCardRun(run: string): string {
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < run.length; i++) {
    const start = i;
    while (i < run.length && isDigit(run.charCodeAt(i))) i++;
    starts.push(start);
    ends.push(i);
  }
  let out = '';
  let copied = 0;
  for (let g = 0; g < starts.length; ) {
    const best = longestCardFrom(run, starts, ends, g);
    if (best < 0) {
      g++;
      continue;
    }
    const digits = run.slice(starts[g], ends[best]).replace(/[ -]/g, '');
    out += run.slice(copied, starts[g]) + cardPlaceholder(digits);
    copied = ends[best]!;
    g = best + 1;
  }
  return copied === 0 ? run : out + run.slice(copied);
}

/** Index of the last group of the longest Luhn-valid card window starting at group `g`, or -1. */
function longestCardFrom(run: string, starts: number[], ends: number[], g: number): number {
  let best = -1;
  let total = 0;
  for (let h = g; h < starts.length; h++) {
    const len = ends[h]! - starts[h]!;
    total += len;
    if (total > MAX_DIGITS) break;
    if (h > g) {
      const prev = ends[h - 1]! - starts[h - 1]!;
      if (prev < 4 || prev > 6) break;
      if (len > 7) break;
    }
    if (total >= MIN_DIGITS && luhnValid(run.slice(starts[g], ends[h]).replace(/[ -]/g, ''))) best = h;
  }
  return best;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}
