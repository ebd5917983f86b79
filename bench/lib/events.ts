/**
 * Realistic synthetic audit events, deterministic per seed, so a scenario knows which values
 * exist (users, resources, request ids, rare words) and can query for them. The content contains
 * nothing the mask stage rewrites (no e-mail addresses, card-like digit runs, tokens or secret key
 * names), so what is read back can be compared with what was sent.
 */

/** mulberry32: a small, fast, seedable PRNG; quality is ample for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;

/** Picks by weight; `table` is [value, weight][]. */
function weighted<T>(r: () => number, table: readonly (readonly [T, number])[]): T {
  const total = table.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [v, w] of table) {
    x -= w;
    if (x < 0) return v;
  }
  return table[table.length - 1]![0];
}

/** Actions with their relative weights (VIEW is the most frequent, EXPORT the rarest). */
export const ACTIONS = [
  ['VIEW', 40],
  ['UPDATE', 25],
  ['CREATE', 15],
  ['LOGIN', 10],
  ['LOGOUT', 5],
  ['DELETE', 4],
  ['EXPORT', 1],
] as const;
/** Severities with their relative weights. */
export const SEVERITIES = [
  ['INFO', 85],
  ['WARNING', 10],
  ['ERROR', 4],
  ['CRITICAL', 1],
] as const;
/** Resource types, equally likely. */
export const RESOURCE_TYPES = [
  'document',
  'invoice',
  'order',
  'project',
  'repository',
  'user',
  'team',
  'api_client',
  'payment_method',
  'subscription',
  'report',
  'dashboard',
] as const;
const VERBS: Record<string, string> = {
  VIEW: 'viewed',
  UPDATE: 'updated',
  CREATE: 'created',
  LOGIN: 'signed in to',
  LOGOUT: 'signed out of',
  DELETE: 'deleted',
  EXPORT: 'exported',
};
const CHANNELS = ['web console', 'mobile app', 'public API', 'admin panel', 'CLI', 'webhook replay'];
const CITIES = ['Lyon', 'Berlin', 'Austin', 'Osaka', 'Nairobi', 'Lima', 'Oslo', 'Pune', 'Perth', 'Quebec'];
const REASONS = [
  'after review',
  'per customer request',
  'during quarterly audit',
  'by scheduled job',
  'following incident triage',
  'as part of onboarding',
  'under change ticket',
  'while migrating workspace',
];
const FIELDS = ['title', 'status', 'owner', 'due_date', 'amount', 'visibility', 'region', 'tags'];
const STATUSES = ['draft', 'open', 'approved', 'archived', 'paid', 'rejected'];
const PLANS = ['free', 'team', 'business', 'enterprise'];
const REGIONS = ['eu-west-1', 'us-east-1', 'ap-southeast-2', 'sa-east-1'];
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'acme-sdk-go/2.14.1',
  'python-requests/2.32.3',
  'okhttp/4.12.0',
];

/** A word that appears in about 1 event in 20,000: the "rare term" of the search shapes. */
export const RARE_TERM = 'quarantined';
/** A word of most UPDATE messages (about a quarter of all events): the "common term". */
export const COMMON_TERM = 'changed';
const RARE_RATE = 1 / 20_000;

/** Users per tenant, resources per type, and the usual span of one request's events. */
export const SHAPE = { users: 1000, resources: 5000 } as const;

/** An event as a client sends it (the ingest API's input). */
export interface GeneratedEvent {
  id?: string;
  occurred_at?: string;
  user_id: string;
  session_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  severity: string;
  ip_address: string;
  user_agent: string;
  message: string;
  metadata: Record<string, string | number | boolean>;
  before?: Record<string, string>;
  after?: Record<string, string>;
  request_id: string;
}

/**
 * Generator of one stream of events. Users follow a skewed distribution (a few very active users),
 * and consecutive events share a `request_id` in runs of 1–5, as one API call records several.
 */
export function eventGenerator(seed: number, prefix = 'r') {
  const r = rng(seed);
  let requestNo = 0;
  let left = 0;
  let requestId = '';
  let user = '';
  let ip = '';
  return function next(): GeneratedEvent {
    if (left === 0) {
      left = 1 + Math.floor(r() * 5);
      requestId = `req-${prefix}-${seed}-${requestNo++}`;
      // Squaring a uniform number skews towards low user numbers: user-0 is the busiest.
      user = `user-${Math.floor(r() * r() * SHAPE.users)}`;
      ip =
        r() < 0.9
          ? `10.${Math.floor(r() * 4)}.${Math.floor(r() * 256)}.${1 + Math.floor(r() * 254)}`
          : `203.0.113.${1 + Math.floor(r() * 254)}`;
    }
    left--;
    const action = weighted(r, ACTIONS);
    const type = pick(r, RESOURCE_TYPES);
    const resourceId = `${type}-${Math.floor(r() * SHAPE.resources)}`;
    const field = pick(r, FIELDS);
    const from = pick(r, STATUSES);
    const to = pick(r, STATUSES);
    let message = `${user} ${VERBS[action]} ${type} ${resourceId} from ${pick(r, CITIES)} via ${pick(r, CHANNELS)} ${pick(r, REASONS)}`;
    if (action === 'UPDATE') message += `; ${COMMON_TERM} ${field} from ${from} to ${to}`;
    if (r() < RARE_RATE) message += `; account ${RARE_TERM} by risk engine`;
    const event: GeneratedEvent = {
      user_id: user,
      session_id: `sess-${user}-${Math.floor(r() * 8)}`,
      action,
      resource_type: type,
      resource_id: resourceId,
      severity: weighted(r, SEVERITIES),
      ip_address: ip,
      user_agent: pick(r, AGENTS),
      message,
      metadata: {
        plan: pick(r, PLANS),
        region: pick(r, REGIONS),
        client_version: `3.${Math.floor(r() * 20)}.${Math.floor(r() * 10)}`,
        mfa: r() < 0.7,
        attempt: 1 + Math.floor(r() * 3),
      },
      request_id: requestId,
    };
    if (action === 'UPDATE') {
      event.before = { [field]: from };
      event.after = { [field]: to };
    }
    return event;
  };
}
