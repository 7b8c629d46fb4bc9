/**
 * When the publisher's loop runs: events are grouped, one spool write and one socket write per
 * flush interval, not per event (a syscall per event would cost more than the decision). A caller
 * waiting for durability (required mode) or a replay in progress runs it on the next turn of the
 * event loop instead (urgent); a group handed over by the serving thread runs it at once (now).
 */
export class FlushScheduler {
  private scheduled = false;
  private immediateScheduled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly run: () => void,
  ) {}

  schedule(urgent = false): void {
    if (this.scheduled && !urgent) return;
    this.clearTimer();
    if (urgent || this.intervalMs === 0) {
      if (this.immediateScheduled) return;
      this.scheduled = true;
      this.immediateScheduled = true;
      setImmediate(() => {
        this.immediateScheduled = false;
        this.scheduled = false;
        this.run();
      });
      return;
    }
    this.scheduled = true;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.scheduled = false;
      this.run();
    }, this.intervalMs);
  }

  /** Runs the loop in this turn, dropping a pending timer (every timer wake-up costs CPU of its own). */
  now(): void {
    if (this.timer) {
      this.clearTimer();
      this.scheduled = false;
    }
    this.run();
  }

  close(): void {
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A one-shot timer that is armed at most once at a time (the checkpoint interval, the spool retry). */
export class OneShotTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly unref = false) {}

  get armed(): boolean {
    return this.timer !== undefined;
  }

  /** Runs `fn` after `ms` unless already armed. */
  arm(ms: number, fn: () => void): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn();
    }, ms);
    if (this.unref) this.timer.unref();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
