/**
 * Process accounting from /proc (Linux): CPU time (utime + stime, all threads) and peak resident
 * set size (VmHWM), which can be reset between scenarios through /proc/<pid>/clear_refs.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU time (user + system, every thread) the process has used so far, in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const ticks = Number(rest[11]) + Number(rest[12]);
  return (ticks * 1e6) / clockTicks();
}

function statusField(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Peak resident set size in bytes since start (or since the last resetPeakRss). */
export function peakRssBytes(pid: number): number {
  return statusField(pid, 'VmHWM');
}

export function rssBytes(pid: number): number {
  return statusField(pid, 'VmRSS');
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0); false if the kernel or permissions refuse. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU of several processes, each counted with its descendants, and of the whole machine. */
export function cpuSnapshot(pids: readonly number[]): { at: number; micros: number[]; machine: { busy: number; idle: number } } {
  return { at: performance.now(), micros: pids.map((p) => treeCpuMicros(p)), machine: machineCpuMicros() };
}

function safeCpu(pid: number): number {
  try {
    return cpuMicros(pid);
  } catch {
    return Number.NaN;
  }
}

/** Whole-machine CPU time from /proc/stat, in microseconds: busy (everything but idle and iowait) and idle. */
export function machineCpuMicros(): { busy: number; idle: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user)
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
  const k = 1e6 / clockTicks();
  return { busy: busy * k, idle: idle * k };
}

/** `pid` and every process below it (a clustered server's workers), from the ppid fields in /proc. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid);
      if (list) list.push(Number(entry));
      else children.set(ppid, [Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU time of a process and all its descendants, in microseconds. */
export function treeCpuMicros(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + safeCpu(p), 0);
}

/** Sum of the peak RSS of a process and its descendants (an upper bound of the tree's peak). */
export function treePeakRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    const v = peakRssBytes(p);
    return Number.isFinite(v) ? sum + v : sum;
  }, 0);
}

export function resetTreePeakRss(pid: number): void {
  for (const p of processTree(pid)) resetPeakRss(p);
}
