/**
 * RFC 4180 CSV cells and rows, safe to open in spreadsheets.
 *
 * - Fields containing a double quote, comma, CR or LF are quoted, with quotes doubled; rows end
 *   in CRLF.
 * - Formula injection: spreadsheet tools execute a cell starting with `=`, `+`, `-` or `@` (and
 *   some also after a leading tab or CR) as a formula, so an attacker who controls an event field
 *   could run one on an auditor's machine. Such cells get a leading `'`, which spreadsheets
 *   treat as "text" and do not display (OWASP "CSV Injection"). The value is then no longer
 *   byte-exact (`-5` reads back as `'-5`); JSON and NDJSON exports carry exact values.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One cell. `undefined` and `null` are empty cells. */
export function csvCell(value: string | undefined | null): string {
  if (value === undefined || value === null || value === '') return '';
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** One row, CRLF-terminated. */
export function csvRow(cells: (string | undefined | null)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}
