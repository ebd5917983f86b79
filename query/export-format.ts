import { csvRow } from './csv.js';
import type { EventRow } from './decode.js';
import { CSV_COLUMNS, eventCsv } from './event-csv.js';
import { eventJson } from './event-json.js';
import type { ExportFormatName } from './filters.js';

/** How one export format frames its rows. */
export interface ExportFormat {
  name: ExportFormatName;
  extension: string;
  contentType: string;
  head: string;
  /**
   * One row's text. `sealed` is the row's opened sealed plaintext (see `sealedOpener`), `index`
   * the row's 0-based position in the export.
   */
  row(row: EventRow, sealed: string | undefined, index: number): string;
  tail: string;
}

export const EXPORT_FORMATS: Record<ExportFormatName, ExportFormat> = {
  // One JSON array; rows are separated by ",\n" so the output can be written row by row.
  json: {
    name: 'json',
    extension: 'json',
    contentType: 'application/json; charset=utf-8',
    head: '[',
    row: (row, sealed, i) => `${i === 0 ? '\n' : ',\n'}${eventJson(row, sealed)}`,
    tail: '\n]\n',
  },
  ndjson: {
    name: 'ndjson',
    extension: 'ndjson',
    contentType: 'application/x-ndjson; charset=utf-8',
    head: '',
    row: (row, sealed) => `${eventJson(row, sealed)}\n`,
    tail: '',
  },
  csv: {
    name: 'csv',
    extension: 'csv',
    contentType: 'text/csv; charset=utf-8',
    head: csvRow([...CSV_COLUMNS]),
    row: (row, sealed) => eventCsv(row, sealed),
    tail: '',
  },
};

/** `auditlog-<tenant>-<UTC timestamp>.<ext>`; tenant ids are `[a-z0-9-]`, so no quoting issue. */
export function exportFilename(tenantId: string, format: ExportFormat, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  return `auditlog-${tenantId}-${stamp}.${format.extension}`;
}
