import type pg from 'pg';

export interface Tenant {
  id: string;
  name: string;
  created_at: string;
}

/** How long "no such tenant" is remembered; a tenant created meanwhile becomes usable after it. */
const NEGATIVE_TTL_MS = 1000;

/** Tenant registry with an existence cache for the ingest hot path. */
export class TenantDirectory {
  private readonly known = new Set<string>();
  private readonly missing = new Map<string, number>();

  constructor(private readonly pool: pg.Pool) {}

  /** Creates a tenant; `false` when the id is taken. */
  async create(id: string, name: string): Promise<Tenant | undefined> {
    const { rows } = await this.pool.query<Tenant>(
      `INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING
       RETURNING id, name, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at`,
      [id, name],
    );
    if (rows[0]) {
      this.known.add(id);
      this.missing.delete(id);
    }
    return rows[0];
  }

  async list(): Promise<Tenant[]> {
    const { rows } = await this.pool.query<Tenant>(
      `SELECT id, name, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
         FROM tenants ORDER BY id`,
    );
    return rows;
  }

  /** Returns the subset of `ids` that do not exist. */
  async unknown(ids: Iterable<string>): Promise<string[]> {
    const now = Date.now();
    const check: string[] = [];
    const absent: string[] = [];
    for (const id of new Set(ids)) {
      if (this.known.has(id)) continue;
      const until = this.missing.get(id);
      if (until !== undefined && until > now) absent.push(id);
      else check.push(id);
    }
    if (check.length > 0) {
      const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM tenants WHERE id = ANY($1)', [
        check,
      ]);
      const found = new Set(rows.map((r) => r.id));
      for (const id of check) {
        if (found.has(id)) this.known.add(id);
        else {
          this.missing.set(id, now + NEGATIVE_TTL_MS);
          absent.push(id);
        }
      }
    }
    return absent;
  }
}
