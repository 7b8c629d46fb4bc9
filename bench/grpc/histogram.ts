/**
 * Latency histogram with logarithmic buckets 1% wide (values in microseconds), so percentiles are
 * within 1% whatever the range, and histograms from several load-generator processes merge exactly.
 * Serialised sparsely ([bucket, count] pairs) for the trip over the IPC channel.
 */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
/** 1.01^2100 ≈ 1.2e9 µs ≈ 20 minutes: more than any call will take. */
const BUCKETS = 2100;

export interface HistogramData {
  readonly buckets: readonly (readonly [number, number])[];
  readonly count: number;
  readonly sumMicros: number;
  readonly maxMicros: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  sumMicros = 0;
  maxMicros = 0;

  static bucketOf(micros: number): number {
    if (!(micros > 1)) return 0;
    return Math.min(BUCKETS - 1, Math.floor(Math.log(micros) / LOG_GROWTH) + 1);
  }

  /** Representative value of a bucket: the geometric middle of its range. */
  static valueOf(bucket: number): number {
    if (bucket === 0) return 1;
    return GROWTH ** (bucket - 0.5);
  }

  record(micros: number): void {
    this.counts[LatencyHistogram.bucketOf(micros)]!++;
    this.count++;
    this.sumMicros += micros;
    if (micros > this.maxMicros) this.maxMicros = micros;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sumMicros = 0;
    this.maxMicros = 0;
  }

  merge(other: HistogramData | LatencyHistogram): this {
    const data = other instanceof LatencyHistogram ? other.toJSON() : other;
    for (const [b, c] of data.buckets) this.counts[b]! += c;
    this.count += data.count;
    this.sumMicros += data.sumMicros;
    this.maxMicros = Math.max(this.maxMicros, data.maxMicros);
    return this;
  }

  /** The value (µs) below which `q` (0..1) of the samples lie. */
  percentile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(LatencyHistogram.valueOf(b), this.maxMicros);
    }
    return this.maxMicros;
  }

  mean(): number {
    return this.count === 0 ? Number.NaN : this.sumMicros / this.count;
  }

  toJSON(): HistogramData {
    const buckets: [number, number][] = [];
    for (let b = 0; b < BUCKETS; b++) if (this.counts[b]! > 0) buckets.push([b, this.counts[b]!]);
    return { buckets, count: this.count, sumMicros: this.sumMicros, maxMicros: this.maxMicros };
  }

  static from(data: HistogramData): LatencyHistogram {
    return new LatencyHistogram().merge(data);
  }
}
