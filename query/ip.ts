import net from 'node:net';
import { HttpError } from '../infra/http/errors.js';

/**
 * Checks an `ip_address` filter: an IPv4/IPv6 address, optionally with a `/prefix`. It is
 * checked here, before PostgreSQL's `inet` cast sees it, so junk is a 400 and never a 500. Zone
 * ids (`fe80::1%eth0`), which Node accepts and `inet` does not, are refused.
 */
export function parseIpFilter(raw: string): string {
  const parts = raw.split('/');
  const [address, prefix] = parts;
  const family = address !== undefined && /^[0-9A-Fa-f:.]+$/.test(address) ? net.isIP(address) : 0;
  const prefixOk =
    prefix === undefined || (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
  if (parts.length > 2 || family === 0 || !prefixOk) {
    throw new HttpError(400, 'invalid_ip_address', 'ip_address must be an IP address or a CIDR range', [
      { path: 'querystring/ip_address', message: 'must be an IPv4/IPv6 address or address/prefix' },
    ]);
  }
  return raw;
}

/**
 * Whether a filter checked by `parseIpFilter` names one address (no prefix, or /32 for IPv4,
 * /128 for IPv6). Stored addresses are always host addresses (the event schema refuses a
 * prefix), so such a filter matches exactly the rows equal to it.
 */
export function isHostAddress(filter: string): boolean {
  const [address, prefix] = filter.split('/');
  return prefix === undefined || Number(prefix) === (net.isIP(address!) === 4 ? 32 : 128);
}
