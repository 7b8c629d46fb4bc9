/**
 * Loaded into every process of the server under test (`node --import`; cluster workers inherit the
 * primary's execArgv) by the reload benchmark: how long each process's event loop was blocked, as
 * the server saw it, apart from what the probe's client and the network add to a Check's wait.
 *
 * perf_hooks' event-loop delay histogram (1 ms timer) is read and reset every 50 ms; a window whose
 * longest delay was ≥ 2 ms is appended to $BENCH_LOOP_FILE as "pid at maxMs cpuMs" (`at`: the
 * window's end on the monotonic clock in ms, as the probes' samples; the delay lies within the
 * window; cpuMs: the process's CPU over the window, all threads).
 * Garbage collections of ≥ 2 ms are appended as "gc pid at ms kind" (`at`: their start), to tell
 * a collection from the server's own work when a delay is long.
 */
import { appendFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';

const file = process.env.BENCH_LOOP_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let lines: string[] = [];
  let ticks = 0;
  const flush = () => {
    if (lines.length > 0) appendFileSync(file, lines.join(''));
    lines = [];
  };
  let cpu = process.cpuUsage();
  const timer = setInterval(() => {
    const maxMs = histogram.max / 1e6;
    histogram.reset();
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    // The process's CPU (every thread) in the window: a delay with little CPU was the scheduler's, not the server's.
    if (maxMs >= 2) lines.push(`${process.pid} ${(Number(process.hrtime.bigint()) / 1e6).toFixed(1)} ${maxMs.toFixed(1)} ${((used.user + used.system) / 1000).toFixed(1)}\n`);
    if (++ticks % 20 === 0) flush();
  }, 50);
  timer.unref();
  // performance.now() and hrtime are the same monotonic clock from different origins.
  const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  const kinds: Record<number, string> = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries() as (PerformanceEntry & { detail?: { kind?: number } })[]) {
      if (e.duration >= 2) lines.push(`gc ${process.pid} ${(e.startTime + offset).toFixed(1)} ${e.duration.toFixed(1)} ${kinds[e.detail?.kind ?? 0] ?? 'other'}\n`);
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', flush);
}
