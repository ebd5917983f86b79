import fs from 'node:fs';

/** Cumulative CPU time of the whole machine, in clock ticks, from the first line of /proc/stat. */
export interface CpuSnapshot {
  busy: number;
  steal: number;
  total: number;
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
}

/** A snapshot of /proc/stat; zeros where it does not exist (not Linux). */
export function cpuSnapshot(): CpuSnapshot {
  let line = '';
  try {
    line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  } catch {
    return { busy: 0, steal: 0, total: 0 };
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy, steal, total: busy + idle + iowait + steal };
}

/** The share of busy and stolen CPU time between `from` and `to` (default: now). */
export function cpuShare(from: CpuSnapshot, to: CpuSnapshot = cpuSnapshot()): CpuShare {
  const total = to.total - from.total;
  const pct = (n: number) => (total > 0 ? Math.round((1000 * n) / total) / 10 : 0);
  return { busy_pct: pct(to.busy - from.busy), steal_pct: pct(to.steal - from.steal) };
}

/** `busy 97.1%, steal 12.4%`, for the human summary. */
export function describeShare(s: CpuShare): string {
  return `busy ${s.busy_pct}%, steal ${s.steal_pct}%`;
}
