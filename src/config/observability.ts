import type { AdminConfig, TracingSettings } from './schema.js';

type Json = Record<string, unknown>;

export const ADMIN_KEYS = ['listen'];

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$/;

/** The `admin` section: the HTTP listener for /metrics, /healthz and /readyz; absent = off. */
export function validateAdmin(raw: Json, problems: string[]): AdminConfig | undefined {
  const v = raw.admin;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    problems.push('admin: must be a mapping, e.g. admin: { listen: 127.0.0.1:9464 }');
    return undefined;
  }
  const section = v as Json;
  for (const k of Object.keys(section)) if (!ADMIN_KEYS.includes(k)) problems.push(`admin.${k}: unknown setting (known: ${ADMIN_KEYS.join(', ')})`);
  const listen = section.listen;
  if (listen === undefined || listen === null || listen === '') return undefined;
  if (typeof listen !== 'string' || !HOST_PORT.test(listen) || Number(listen.split(':').pop()) > 65535) {
    problems.push(`admin.listen: ${JSON.stringify(listen)} must be HOST:PORT, e.g. 127.0.0.1:9464 (port 0 picks a free port)`);
    return undefined;
  }
  return { listen };
}

const EXPORTERS = ['otlp', 'console', 'none'];
const PROTOCOLS = ['http/protobuf', 'http/json'];
const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

/**
 * Tracing is configured by the standard OpenTelemetry environment variables only, and is off unless
 * OTEL_TRACES_EXPORTER names an exporter. The values the SDK would silently replace by a default
 * (an unknown sampler, a ratio out of range) are refused here, at start, naming the variable.
 */
export function tracingFromEnvironment(env: NodeJS.ProcessEnv, problems: string[]): TracingSettings | undefined {
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  if (/^(true|1)$/i.test(get('OTEL_SDK_DISABLED') ?? '')) return undefined;
  const exporters = (get('OTEL_TRACES_EXPORTER') ?? 'none').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const unknown = exporters.filter((e) => !EXPORTERS.includes(e));
  if (unknown.length > 0) {
    problems.push(`OTEL_TRACES_EXPORTER: ${unknown.map((u) => `"${u}"`).join(', ')} is not supported; use otlp (OTLP over HTTP), console (spans as log lines) or none`);
    return undefined;
  }
  const chosen = exporters.filter((e) => e !== 'none');
  if (chosen.length === 0) return undefined;
  const protocol = (get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? get('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf').toLowerCase();
  if (chosen.includes('otlp') && !PROTOCOLS.includes(protocol)) {
    const name = get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
    problems.push(`${name}: "${protocol}" is not supported; use http/protobuf (the default, collector port 4318) or http/json`);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT']) {
    const url = get(name);
    if (url !== undefined && !/^https?:\/\/[^\s/]+/i.test(url)) problems.push(`${name}: "${url}" must be an http:// or https:// URL, e.g. http://127.0.0.1:4318`);
  }
  const sampler = (get('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  if (!SAMPLERS.includes(sampler)) problems.push(`OTEL_TRACES_SAMPLER: "${sampler}" must be one of ${SAMPLERS.join(', ')}`);
  const arg = get('OTEL_TRACES_SAMPLER_ARG');
  if (sampler.endsWith('traceidratio') && arg !== undefined) {
    const ratio = Number(arg);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) problems.push(`OTEL_TRACES_SAMPLER_ARG: "${arg}" must be a number from 0 to 1 (the share of traces kept)`);
  }
  return { exporters: chosen as TracingSettings['exporters'], protocol: protocol as TracingSettings['protocol'], sampler };
}
