/**
 * Scraping a real `verdict serve --admin`: the admin port is read from the "admin listener
 * serving" log line, /metrics is parsed with a real Prometheus text-format parser
 * (parse-prometheus-text-format), and values are looked up by name and a subset of labels.
 */
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { startServer, type LogLine, type StartServerOptions, type VerdictProcess } from '../support/server-process.js';

export const ADMIN_LINE = 'admin listener serving /metrics, /healthz, /readyz';

export interface AdminProcess {
  readonly proc: VerdictProcess;
  /** 127.0.0.1:<admin port> */
  readonly admin: string;
}

/** The admin address from a process's log line. */
export async function adminAddress(waitForLog: (m: (l: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine>): Promise<string> {
  const line = await waitForLog((l) => l.msg === ADMIN_LINE, 15_000);
  return String(line.admin);
}

/** `verdict serve` with `--admin 127.0.0.1:0` (plus the given options). */
export async function startWithAdmin(opts: StartServerOptions): Promise<AdminProcess> {
  const proc = await startServer({ ...opts, args: [...(opts.args ?? []), '--admin', '127.0.0.1:0'] });
  return { proc, admin: await adminAddress((m, t) => proc.waitForLog(m, t)) };
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

export async function http(admin: string, path: string, init: RequestInit = {}): Promise<HttpAnswer> {
  const res = await fetch(`http://${admin}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/**
 * One parsed scrape. parse-prometheus-text-format folds a histogram's series into one sample and
 * drops their labels when there are labels besides `le`; so histograms are also read a second time
 * with their TYPE lines left out, which makes the parser return the _bucket, _sum and _count series
 * as plain samples with all their labels.
 */
export class Scrape {
  readonly families: Map<string, ParsedFamily>;
  private readonly series: Map<string, ParsedFamily>;

  constructor(readonly text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
    const untyped = text
      .split('\n')
      .filter((l) => !(l.startsWith('# TYPE ') && l.endsWith(' histogram')))
      .join('\n');
    // Each label set's _bucket, _sum and _count lines come together: a name recurs, so its samples are gathered.
    this.series = new Map();
    for (const f of parsePrometheusTextFormat(untyped)) {
      const seen = this.series.get(f.name);
      this.series.set(f.name, seen ? { ...seen, metrics: [...seen.metrics, ...f.metrics] } : f);
    }
  }

  family(name: string): ParsedFamily | undefined {
    return this.families.get(name);
  }

  /** Samples of the series `name` (a counter, a gauge, or a histogram's name_bucket/_sum/_count) whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): ParsedFamily['metrics'] {
    return (this.series.get(name)?.metrics ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  }

  /** The sum of the matching samples' values; 0 when there is none. */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples(name, labels).reduce((s, m) => s + Number(m.value), 0);
  }

  /** The sum of the matching histograms' observation counts. */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.value(`${name}_count`, labels);
  }
}

export async function scrape(admin: string): Promise<Scrape> {
  const res = await http(admin, '/metrics');
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${res.body}`);
  return new Scrape(res.body);
}
