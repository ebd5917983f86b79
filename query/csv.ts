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
const NEEDS_QUOTES = /[",\r\n]/;

/** Whether a cell starting with this UTF-16 code unit is a formula: `=`, `+`, `-`, `@`, tab or CR. */
export function formulaStart(code: number): boolean {
  return code === 0x3d || code === 0x2b || code === 0x2d || code === 0x40 || code === 0x09 || code === 0x0d;
}

/** One cell. `undefined` and `null` are empty cells. */
export function csvCell(value: string | undefined | null): string {
  if (value === undefined || value === null || value === '') return '';
  // A code comparison rather than a regex: an export calls this 18 times per row.
  const safe = formulaStart(value.charCodeAt(0)) ? `'${value}` : value;
  return NEEDS_QUOTES.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** One row, CRLF-terminated. */
export function csvRow(cells: (string | undefined | null)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}
