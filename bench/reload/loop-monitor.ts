/**
 * Loaded into every process of the server under test (`node --import`; cluster workers inherit the
 * primary's execArgv) by the reload benchmark: how long each process's event loop was blocked, as
 * the server saw it, apart from what the probe's client and the network add to a Check's wait.
 *
 * perf_hooks' event-loop delay histogram (1 ms timer) is read and reset every 50 ms; a window whose
 * longest delay was ≥ 2 ms is appended to $BENCH_LOOP_FILE as "pid at maxMs" (`at`: the window's
 * end on the monotonic clock in ms, as the probes' samples; the delay lies within the window).
 */
import { appendFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

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
  const timer = setInterval(() => {
    const maxMs = histogram.max / 1e6;
    histogram.reset();
    if (maxMs >= 2) lines.push(`${process.pid} ${(Number(process.hrtime.bigint()) / 1e6).toFixed(1)} ${maxMs.toFixed(1)}\n`);
    if (++ticks % 20 === 0) flush();
  }, 50);
  timer.unref();
  process.on('exit', flush);
}
