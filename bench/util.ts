/** Small helpers shared by the benchmark scripts. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/bench/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function fmtInt(n: number): string {
  if (!Number.isFinite(n)) return '–';
  return Math.round(n).toLocaleString('en-US');
}

export function fmtNum(n: number, digits: number): string {
  if (!Number.isFinite(n)) return '–';
  return n.toFixed(digits);
}

/** Significant-ish formatting for latencies in ms: 0.123, 1.23, 12.3, 123. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1) return ms.toFixed(3);
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

export interface Flags {
  readonly positional: readonly string[];
  has(name: string): boolean;
  str(name: string, fallback: string): string;
  optStr(name: string): string | undefined;
  num(name: string, fallback: number): number;
  int(name: string, fallback: number): number;
  bool(name: string): boolean;
  list(name: string, fallback: readonly string[]): string[];
}

/**
 * `--name value`, `--name=value` and bare `--flag`. Each flag may also come from the environment as
 * BENCH_NAME (dashes become underscores), so `BENCH_DURATION=10 make bench` works; flags win.
 * `booleans` names flags that never take a value.
 */
export function parseFlags(argv: readonly string[], booleans: readonly string[] = ['json', 'quick', 'write-docs', 'help', 'verbose']): Flags {
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (booleans.includes(a.slice(2)) || i + 1 >= argv.length || argv[i + 1]!.startsWith('--')) values.set(a.slice(2), 'true');
    else values.set(a.slice(2), argv[++i]!);
  }
  const get = (name: string): string | undefined => values.get(name) ?? process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  const num = (name: string, fallback: number): number => {
    const v = get(name);
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${name}: not a number: ${v}`);
    return n;
  };
  return {
    positional,
    has: (name) => get(name) !== undefined,
    str: (name, fallback) => get(name) ?? fallback,
    optStr: (name) => get(name),
    num,
    int: (name, fallback) => Math.round(num(name, fallback)),
    bool: (name) => {
      const v = get(name);
      return v !== undefined && v !== 'false' && v !== '0' && v !== '';
    },
    list: (name, fallback) => {
      const v = get(name);
      return v === undefined ? [...fallback] : v.split(',').map((s) => s.trim()).filter(Boolean);
    },
  };
}
