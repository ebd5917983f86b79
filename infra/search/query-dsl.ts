import { HttpError } from '../http/errors.js';
import { toUtcMicros } from './documents.js';

/** Most terms one `q` may hold; bounds the size of the query sent to OpenSearch. */
export const MAX_QUERY_TERMS = 32;

/** One term of a web-search query: a word or a quoted phrase, possibly excluded with `-`. */
export interface WebSearchTerm {
  phrase: boolean;
  text: string;
  negated: boolean;
}

/**
 * Parses web-search syntax the way PostgreSQL's `websearch_to_tsquery` reads it: words are ANDed,
 * `"…"` is a phrase, `OR` (any case) joins its neighbours into one alternative group (binding
 * tighter than AND), and `-word` / `-"phrase"` excludes. Returns the AND-list of OR-groups.
 * Terms without a letter or digit are dropped (PostgreSQL ignores bare punctuation too).
 */
export function parseWebSearch(q: string): WebSearchTerm[][] {
  const groups: WebSearchTerm[][] = [];
  let joinNext = false;
  let count = 0;
  let i = 0;
  while (i < q.length) {
    while (i < q.length && /\s/.test(q[i]!)) i++;
    if (i >= q.length) break;
    let negated = false;
    if (q[i] === '-' && i + 1 < q.length && !/\s/.test(q[i + 1]!)) {
      negated = true;
      i++;
    }
    let text: string;
    let phrase = false;
    if (q[i] === '"') {
      const end = q.indexOf('"', i + 1);
      text = q.slice(i + 1, end === -1 ? q.length : end);
      i = end === -1 ? q.length : end + 1;
      phrase = true;
    } else {
      const start = i;
      while (i < q.length && !/\s/.test(q[i]!) && q[i] !== '"') i++;
      text = q.slice(start, i);
    }
    if (!phrase && !negated && text.toLowerCase() === 'or') {
      joinNext = groups.length > 0;
      continue;
    }
    if (!/[\p{L}\p{N}]/u.test(text)) continue;
    if (++count > MAX_QUERY_TERMS) {
      throw new HttpError(400, 'query_too_complex', `q may hold at most ${MAX_QUERY_TERMS} terms`);
    }
    const term = { phrase, text: phrase ? text.trim().replace(/\s+/g, ' ') : text, negated };
    const last = groups[groups.length - 1];
    if (joinNext && last) last.push(term);
    else groups.push([term]);
    joinNext = false;
  }
  return groups;
}

/** The field `q` searches (see mapping.ts). Only ever used as a field name we chose, never from input. */
const TEXT_FIELD = 'search_text';

function termClause(t: WebSearchTerm): object {
  // match/match_phrase treat the text as text to analyze: no operators, field names or wildcards in
  // it are interpreted, so `q` cannot reach the query structure (unlike query_string).
  return t.phrase
    ? { match_phrase: { [TEXT_FIELD]: t.text } }
    : { match: { [TEXT_FIELD]: { query: t.text, operator: 'and' } } };
}

/** The bool clauses of a parsed `q`. A `q` with no usable term matches nothing. */
export function textQuery(q: string): { must: object[]; must_not: object[] } {
  const must: object[] = [];
  const mustNot: object[] = [];
  for (const group of parseWebSearch(q)) {
    const only = group.length === 1 ? group[0] : undefined;
    if (only) (only.negated ? mustNot : must).push(termClause(only));
    else {
      must.push({
        bool: {
          should: group.map((t) => (t.negated ? { bool: { must_not: [termClause(t)] } } : termClause(t))),
          minimum_should_match: 1,
        },
      });
    }
  }
  if (must.length === 0 && mustNot.length === 0) must.push({ match_none: {} });
  return { must, must_not: mustNot };
}

/** Filters, all optional, as in the query string (comma lists for action and severity). */
export interface SearchFilters {
  /** Web-search syntax (see `parseWebSearch`). */
  q?: string;
  from?: string;
  to?: string;
  user_id?: string;
  action?: string;
  resource_type?: string;
  resource_id?: string;
  severity?: string;
  request_id?: string;
  /** An address or a CIDR range (the `ip` field type matches both). */
  ip_address?: string;
  /** Blind-index tokens of `metadata.<key>=<value>` filters (`metaToken`), all required. */
  metaTokens?: string[];
}

/**
 * Result order, as in the PostgreSQL path (`query/order.ts`): by time with the sequence as
 * tiebreaker, or by the sequence alone (a request's causal order).
 */
export type SearchOrder = 'time-desc' | 'time-asc' | 'seq-asc' | 'seq-desc';

export interface SearchRequest {
  /** The tenant whose alias is searched and whose id every query is filtered on. */
  tenantId: string;
  /** Set for the `user` role: only this user's events. */
  userId?: string;
  filters: SearchFilters;
  order: SearchOrder;
  /** Hits to return. */
  size: number;
  /** Keyset position after which to continue (the same cursor as the PostgreSQL path). */
  after?: { occurredAt: string; seq: string };
}

/**
 * The OpenSearch query body for a search. The first filter is ALWAYS `term: {tenant_id}` (and the
 * user's id for the user role), whatever else is asked: the alias already targets one tenant's
 * index, and this filter keeps isolation even if an alias were ever pointed at the wrong index.
 */
export function buildSearchBody(req: SearchRequest): Record<string, unknown> {
  const filter: object[] = [{ term: { tenant_id: req.tenantId } }];
  if (req.userId !== undefined) filter.push({ term: { user_id: req.userId } });
  const f = req.filters;
  if (f.user_id !== undefined) filter.push({ term: { user_id: f.user_id } });
  if (f.from !== undefined || f.to !== undefined) {
    filter.push({
      range: {
        occurred_at: {
          ...(f.from !== undefined ? { gte: toUtcMicros(f.from) } : {}),
          ...(f.to !== undefined ? { lt: toUtcMicros(f.to) } : {}),
        },
      },
    });
  }
  if (f.action !== undefined) filter.push({ terms: { action: f.action.split(',') } });
  if (f.resource_type !== undefined) filter.push({ term: { resource_type: f.resource_type } });
  if (f.resource_id !== undefined) filter.push({ term: { resource_id: f.resource_id } });
  if (f.severity !== undefined) filter.push({ terms: { severity: f.severity.split(',') } });
  if (f.request_id !== undefined) filter.push({ term: { request_id: f.request_id } });
  if (f.ip_address !== undefined) filter.push({ term: { ip_address: f.ip_address } });
  for (const token of f.metaTokens ?? []) filter.push({ term: { meta_idx: token } });
  const dir = req.order.endsWith('desc') ? 'desc' : 'asc';
  const bySeq = req.order.startsWith('seq');
  if (req.after) {
    // Keyset, exactly as in PostgreSQL: strictly past the cursor in the sort order.
    const op = dir === 'desc' ? 'lt' : 'gt';
    filter.push(
      bySeq
        ? { range: { sequence: { [op]: req.after.seq } } }
        : {
            bool: {
              should: [
                { range: { occurred_at: { [op]: req.after.occurredAt } } },
                {
                  bool: {
                    filter: [
                      { term: { occurred_at: req.after.occurredAt } },
                      { range: { sequence: { [op]: req.after.seq } } },
                    ],
                  },
                },
              ],
              minimum_should_match: 1,
            },
          },
    );
  }
  const text = f.q !== undefined ? textQuery(f.q) : { must: [], must_not: [] };
  return {
    size: req.size,
    track_total_hits: false,
    _source: ['id', 'sequence', 'occurred_at'],
    query: { bool: { filter, must: text.must, must_not: text.must_not } },
    sort: bySeq
      ? [{ sequence: { order: dir } }]
      : [{ occurred_at: { order: dir } }, { sequence: { order: dir } }],
  };
}
