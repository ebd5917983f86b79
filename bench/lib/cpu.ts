import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * Cumulative CPU time of the whole machine, in clock ticks, from the first line of /proc/stat,
 * and the time some task waited on I/O (µs, /proc/pressure/io), with the wall clock it was read at.
 */
export interface CpuSnapshot {
  busy: number;
  steal: number;
  total: number;
  ioStallUs: number;
  wallUs: number;
}

/** What the machine's CPUs did between two snapshots, as percentages of their time. */
export interface CpuShare {
  /** Running anything (user, nice, system, interrupts), on this VM. */
  busy_pct: number;
  /**
   * Time the hypervisor gave this VM's CPUs to someone else while they had work. A run with much
   * steal measured a slower machine than one without: compare figures of runs with similar steal.
   */
  steal_pct: number;
  /**
   * Share of wall-clock time in which at least one task was stalled waiting for I/O (Linux
   * pressure stall information, `some`; 0 where the kernel does not report it). Reads that miss the
   * page cache and commits waiting for a slow disk show here, not as busy CPU.
   */
  io_stall_pct: number;
}

/** `total=` of the `some` line of /proc/pressure/io, in µs; 0 where it does not exist. */
function ioStallUs(): number {
  try {
    const line = fs.readFileSync('/proc/pressure/io', 'utf8').split('\n', 1)[0] ?? '';
    return Number(/total=(\d+)/.exec(line)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** A snapshot of /proc/stat; zeros where it does not exist (not Linux). */
export function cpuSnapshot(): CpuSnapshot {
  let line = '';
  const wallUs = performance.now() * 1000;
  try {
    line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  } catch {
    return { busy: 0, steal: 0, total: 0, ioStallUs: 0, wallUs };
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy, steal, total: busy + idle + iowait + steal, ioStallUs: ioStallUs(), wallUs };
}

/** The share of busy and stolen CPU time between `from` and `to` (default: now). */
export function cpuShare(from: CpuSnapshot, to: CpuSnapshot = cpuSnapshot()): CpuShare {
  const total = to.total - from.total;
  const pct = (n: number) => (total > 0 ? Math.round((1000 * n) / total) / 10 : 0);
  const wall = to.wallUs - from.wallUs;
  const stall = wall > 0 ? Math.round((1000 * (to.ioStallUs - from.ioStallUs)) / wall) / 10 : 0;
  return {
    busy_pct: pct(to.busy - from.busy),
    steal_pct: pct(to.steal - from.steal),
    io_stall_pct: Math.min(100, Math.max(0, stall)),
  };
}

/** `busy 97.1%, steal 12.4%, I/O stall 0.3%`, for the human summary. */
export function describeShare(s: CpuShare): string {
  return `busy ${s.busy_pct}%, steal ${s.steal_pct}%, I/O stall ${s.io_stall_pct}%`;
}
