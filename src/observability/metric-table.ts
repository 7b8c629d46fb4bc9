/**
 * Hot-path metric storage: counters and histograms over a fixed set of label combinations
 * ("children", numbered at construction), kept in typed arrays. Recording is an index computation
 * and an increment: no label object, no hashing, no allocation. prom-client's own labelled
 * metrics hash the label object on every call; these are read into prom-client's exposition
 * format (MetricValue lists) only when /metrics is scraped.
 */
import type { Registry } from 'prom-client';

export type Labels = Readonly<Record<string, string>>;

/** One sample as prom-client formats it (`metricName` for histogram series: _bucket, _sum, _count). */
export interface Sample {
  readonly value: number;
  readonly labels: Labels;
  readonly metricName?: string;
}

export type MetricKind = 'counter' | 'gauge' | 'histogram';

/**
 * A metric whose samples are produced at scrape time. prom-client's Registry accepts any object
 * with name/help/type/aggregator and an async get() (its AggregatorRegistry registers the same kind).
 */
export function registerCollector(registry: Registry, name: string, help: string, type: MetricKind, samples: () => readonly Sample[] | Promise<readonly Sample[]>): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: [...(await samples())] }),
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

/** Counters for `children` label combinations. */
export class CounterTable {
  readonly counts: Float64Array;

  constructor(private readonly childLabels: readonly Labels[]) {
    this.counts = new Float64Array(childLabels.length);
  }

  inc(child: number, by = 1): void {
    this.counts[child]! += by;
  }

  /** Samples of the children counted at least once (a series appears with its first event). */
  samples(): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]! > 0) out.push({ value: this.counts[i]!, labels: this.childLabels[i]! });
    return out;
  }
}

/** Histograms with the same bucket bounds (seconds) for `children` label combinations. */
export class HistogramTable {
  private readonly width: number;
  /** Per child: the count of each bucket (not cumulative), the last one being +Inf. */
  private readonly buckets: Float64Array;
  private readonly sums: Float64Array;
  private readonly le: readonly string[];

  constructor(
    private readonly name: string,
    private readonly bounds: readonly number[],
    private readonly childLabels: readonly Labels[],
  ) {
    this.width = bounds.length + 1;
    this.buckets = new Float64Array(this.width * childLabels.length);
    this.sums = new Float64Array(childLabels.length);
    this.le = [...bounds.map((b) => String(b)), '+Inf'];
  }

  observe(child: number, value: number): void {
    const bounds = this.bounds;
    let i = 0;
    // le semantics: a value lands in the first bucket whose bound it does not exceed.
    while (i < bounds.length && value > bounds[i]!) i++;
    this.buckets[child * this.width + i]! += 1;
    this.sums[child]! += value;
  }

  /** Cumulative _bucket series, _sum and _count of every child observed at least once. */
  samples(): Sample[] {
    const out: Sample[] = [];
    for (let c = 0; c < this.childLabels.length; c++) {
      const base = c * this.width;
      let count = 0;
      for (let i = 0; i < this.width; i++) count += this.buckets[base + i]!;
      if (count === 0) continue;
      const labels = this.childLabels[c]!;
      let cumulative = 0;
      for (let i = 0; i < this.width; i++) {
        cumulative += this.buckets[base + i]!;
        out.push({ value: cumulative, labels: { ...labels, le: this.le[i]! }, metricName: `${this.name}_bucket` });
      }
      out.push({ value: this.sums[c]!, labels, metricName: `${this.name}_sum` });
      out.push({ value: count, labels, metricName: `${this.name}_count` });
    }
    return out;
  }
}
