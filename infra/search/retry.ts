/** How OpenSearch requests and bulk items are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt (`OPENSEARCH_MAX_RETRIES`). */
  maxRetries: number;
  /** Delay before the first retry, doubled for each further one. Default 200 ms. */
  baseMs: number;
  /** Longest single delay. Default 10 s. */
  maxMs: number;
}

/**
 * Exponential backoff with jitter: retry `attempt` (0-based) waits between half and all of
 * `baseMs * 2^attempt`, capped at `maxMs`. The jitter keeps many index workers that were throttled
 * together (a 429 from one busy cluster) from retrying in lockstep.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
