/**
 * Settings and mapping of every tenant index (installed as an index template). Only masked,
 * searchable fields are indexed: the sealed before/after/metadata never leave PostgreSQL. The
 * text fields are copied into `search_text`, the one field `q` searches, mirroring the PostgreSQL
 * tsvector (message, action, resource type and id, user, masked metadata text).
 */
export function indexTemplate(prefix: string) {
  const keyword = { type: 'keyword' } as const;
  const searchable = { type: 'keyword', copy_to: 'search_text' } as const;
  return {
    index_patterns: [`${prefix}-*`],
    template: {
      settings: {
        number_of_shards: 1,
        // Search results may lag indexing by this much; PostgreSQL stays the source of truth.
        refresh_interval: '1s',
      },
      mappings: {
        // Unknown fields are kept in _source but never indexed: nothing is searchable by accident.
        dynamic: false,
        properties: {
          tenant_id: keyword,
          id: keyword,
          sequence: { type: 'long' },
          // date_nanos keeps PostgreSQL's microseconds, so keyset cursors compare exactly.
          occurred_at: { type: 'date_nanos' },
          received_at: { type: 'date_nanos' },
          user_id: searchable,
          session_id: keyword,
          action: searchable,
          resource_type: searchable,
          resource_id: searchable,
          severity: keyword,
          ip_address: { type: 'ip' },
          user_agent: { type: 'keyword', ignore_above: 1024 },
          message: { type: 'text', copy_to: 'search_text' },
          request_id: keyword,
          meta_idx: keyword,
          meta_text: { type: 'text', copy_to: 'search_text' },
          search_text: { type: 'text', analyzer: 'standard' },
        },
      },
    },
  };
}
