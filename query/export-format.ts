import type { StoredEvent } from '../infra/schema/event.js';
import { csvRow } from './csv.js';
import type { ExportFormatName } from './filters.js';

/** How one export format frames its rows. `row` gets the row's 0-based position. */
export interface ExportFormat {
  extension: string;
  contentType: string;
  head: string;
  row(event: StoredEvent, index: number): string;
  tail: string;
}

/** CSV columns, in order: every event field; before/after/metadata as JSON text. */
export const CSV_COLUMNS = [
  'tenant_id',
  'id',
  'sequence',
  'occurred_at',
  'received_at',
  'user_id',
  'session_id',
  'action',
  'resource_type',
  'resource_id',
  'severity',
  'ip_address',
  'user_agent',
  'message',
  'request_id',
  'before',
  'after',
  'metadata',
] as const satisfies readonly (keyof StoredEvent)[];

function csvCells(e: StoredEvent): (string | undefined)[] {
  return CSV_COLUMNS.map((c) => {
    const v = e[c];
    return v === undefined || typeof v === 'string' ? v : JSON.stringify(v);
  });
}

export const EXPORT_FORMATS: Record<ExportFormatName, ExportFormat> = {
  // One JSON array; rows are separated by ",\n" so the output can be written row by row.
  json: {
    extension: 'json',
    contentType: 'application/json; charset=utf-8',
    head: '[',
    row: (e, i) => `${i === 0 ? '\n' : ',\n'}${JSON.stringify(e)}`,
    tail: '\n]\n',
  },
  ndjson: {
    extension: 'ndjson',
    contentType: 'application/x-ndjson; charset=utf-8',
    head: '',
    row: (e) => `${JSON.stringify(e)}\n`,
    tail: '',
  },
  csv: {
    extension: 'csv',
    contentType: 'text/csv; charset=utf-8',
    head: csvRow([...CSV_COLUMNS]),
    row: (e) => csvRow(csvCells(e)),
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
