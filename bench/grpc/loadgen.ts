/**
 * One load-generator process (forked by bench/grpc/driver.ts; several run side by side, because a
 * single Node client saturates its own core at a few thousand calls per second).
 *
 * It opens its own connection (unary-transport.ts: raw HTTP/2 by default, or grpc-js), keeps
 * `inFlight` calls outstanding, and reports a latency histogram over the IPC channel. Requests are
 * encoded once up front and sent as raw bytes, and responses are not decoded (one probe call at
 * start-up is, to check the server answers sensibly), so the generator spends its CPU on the
 * transport only and keeps headroom.
 *
 * Phases, driven by the parent: config → ready; start (warm-up, not recorded); measure (record;
 * with `count`, stop after that many calls and report); stop (stop recording and issuing, report);
 * exit.
 */
import { LatencyHistogram, type HistogramData } from './histogram.js';
import { protocol, type MethodName } from './protocols.js';
import { createTransport, type ClientKind, type UnaryTransport } from './unary-transport.js';
import { Http1Transport } from '../http/http1-transport.js';
import type { WorkloadName } from '../workloads.js';

export interface GeneratorConfig {
  readonly address: string;
  readonly protocol: string;
  readonly method: MethodName;
  readonly workload: WorkloadName;
  readonly inFlight: number;
  /** Which generator this is (0-based): each starts at a different place in the request pool. */
  readonly index: number;
  /** How calls are sent (unary-transport.ts). */
  readonly client: ClientKind;
}

export interface GeneratorResult {
  readonly calls: number;
  readonly errors: number;
  readonly errorSamples: string[];
  readonly histogram: HistogramData;
  readonly elapsedMs: number;
}

export type ToGenerator = { type: 'config'; config: GeneratorConfig } | { type: 'start' } | { type: 'measure'; count?: number } | { type: 'stop' } | { type: 'exit' };
export type FromGenerator = { type: 'ready'; pid: number; poolSize: number; requestBytes: number } | { type: 'result'; result: GeneratorResult } | { type: 'fatal'; message: string };

function send(msg: FromGenerator): void {
  process.send?.(msg);
}

class Generator {
  private readonly transport: UnaryTransport;
  private readonly path: string;
  private readonly pool: Buffer[];
  private next: number;
  private readonly histogram = new LatencyHistogram();
  private issuing = false;
  private recording = false;
  private epoch = 0;
  private countLimit = Infinity;
  private issuedInEpoch = 0;
  private completedInEpoch = 0;
  private calls = 0;
  private errors = 0;
  private readonly errorSamples = new Set<string>();
  private measureStart = 0;
  private outstanding = 0;
  private reported = false;

  constructor(private readonly config: GeneratorConfig) {
    const proto = protocol(config.protocol);
    const method = proto.method(config.method);
    this.path = method.path;
    this.pool = proto.messages(config.workload, config.method).map((m) => method.encode(m));
    this.next = (config.index * 7919) % this.pool.length;
    // HTTP/1.1 carries one call at a time per connection: one connection per call in flight.
    this.transport = proto.transport === 'http1' ? new Http1Transport(config.address, this.path, this.pool, config.inFlight) : createTransport(config.client, config.address, this.path, this.pool);
  }

  get poolSize(): number {
    return this.pool.length;
  }

  get requestBytes(): number {
    return Math.round(this.pool.reduce((s, b) => s + b.length, 0) / this.pool.length);
  }

  /** Waits for the connection, then sends one call over it and decodes the answer. */
  async probe(): Promise<void> {
    await this.transport.ready(30_000);
    const proto = protocol(this.config.protocol);
    const method = proto.method(this.config.method);
    const response = method.decode(await this.transport.callForResponse(0));
    const problem = proto.problemWith(this.config.method, response);
    if (problem) throw new Error(`${this.config.method} probe: ${problem}`);
  }

  start(): void {
    this.issuing = true;
    for (let i = 0; i < this.config.inFlight; i++) this.issue();
  }

  measure(count: number | undefined): void {
    this.histogram.reset();
    this.calls = 0;
    this.errors = 0;
    this.errorSamples.clear();
    this.epoch++;
    this.issuedInEpoch = 0;
    this.completedInEpoch = 0;
    this.countLimit = count ?? Infinity;
    this.measureStart = performance.now();
    this.recording = true;
    if (!this.issuing) this.start();
  }

  stop(): void {
    this.issuing = false;
    this.report();
  }

  private report(): void {
    if (this.reported) return;
    this.reported = true;
    this.recording = false;
    const elapsedMs = performance.now() - this.measureStart;
    send({ type: 'result', result: { calls: this.calls, errors: this.errors, errorSamples: [...this.errorSamples], histogram: this.histogram.toJSON(), elapsedMs } });
  }

  private issue(): void {
    if (!this.issuing) return;
    if (this.countLimit !== Infinity && this.recording) {
      if (this.issuedInEpoch >= this.countLimit) return;
      this.issuedInEpoch++;
    }
    const epoch = this.epoch;
    const index = this.next;
    if (++this.next === this.pool.length) this.next = 0;
    const t0 = performance.now();
    this.outstanding++;
    this.transport.call(index, (err) => {
      const micros = (performance.now() - t0) * 1000;
      this.outstanding--;
      // Duration mode records every completion inside the window; count mode records the calls it issued.
      const counted = this.countLimit !== Infinity;
      if (this.recording && (!counted || epoch === this.epoch)) {
        if (err) {
          this.errors++;
          if (this.errorSamples.size < 3) this.errorSamples.add(err);
        } else {
          this.calls++;
          this.histogram.record(micros);
        }
        if (counted && ++this.completedInEpoch >= this.countLimit) {
          this.issuing = false;
          this.report();
          return;
        }
      }
      this.issue();
    });
  }

  close(): void {
    this.issuing = false;
    this.transport.close();
  }
}

let generator: Generator | undefined;

process.on('message', (msg: ToGenerator) => {
  switch (msg.type) {
    case 'config':
      try {
        generator = new Generator(msg.config);
      } catch (err) {
        send({ type: 'fatal', message: (err as Error).message });
        return;
      }
      generator.probe().then(
        () => send({ type: 'ready', pid: process.pid, poolSize: generator!.poolSize, requestBytes: generator!.requestBytes }),
        (err: unknown) => send({ type: 'fatal', message: `cannot reach ${msg.config.address}: ${(err as Error).message}` }),
      );
      break;
    case 'start':
      generator?.start();
      break;
    case 'measure':
      generator?.measure(msg.count);
      break;
    case 'stop':
      generator?.stop();
      break;
    case 'exit':
      generator?.close();
      process.disconnect?.();
      setTimeout(() => process.exit(0), 50).unref();
      break;
  }
});
// The parent went away: nothing left to report to.
process.on('disconnect', () => process.exit(0));
