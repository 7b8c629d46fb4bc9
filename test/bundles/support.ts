/** Helpers for the bundle tests: policy sets, replicas serving a label, and direct (forced) writes. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { stringify as toYaml } from 'yaml';
import { buildBundle, type BuiltBundle } from '../../src/bundles/format.js';
import { BundleStore, LABEL_SCHEMA, type BundleBuckets } from '../../src/bundles/store.js';
import { DEFAULT_BUNDLE_LIMITS } from '../../src/bundles/format.js';
import { sha256Hex } from '../../src/policy/index.js';
import { isServingLine, makeTempDir, spawnVerdict, type VerdictProcess } from '../support/server-process.js';
import { randomToken } from '../support/events-harness.js';

/** Employees may read documents (v1); v2 also lets them edit. */
export const V1 = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read]
    effect: allow
    roles: [employee]
`;
export const V2 = `${V1}  - name: employees-edit
    actions: [edit]
    effect: allow
    roles: [employee]
`;
/** Parses, but its condition does not type-check (a string plus a number). */
export const BROKEN = `${V1}  - name: broken
    actions: [delete]
    effect: allow
    when: subject.id + 1
`;

export const SUITE = `name: documents
tests:
  - name: employees read
    request: {subject: {id: alice, roles: [employee]}, action: read, resource: {type: document, id: d1}}
    expect: allow
`;

/** A policy directory holding document.yaml (and a passing suite unless `suite` is null). */
export function policyDir(text: string, suite: string | null = SUITE): string {
  const dir = makeTempDir('bundle-src');
  writeFileSync(path.join(dir, 'document.yaml'), text);
  if (suite !== null) writeFileSync(path.join(dir, 'document_test.yaml'), suite);
  return dir;
}

export interface Names {
  readonly objects: string;
  readonly labels: string;
  readonly fleet: string;
  readonly label: string;
}

export function uniqueBuckets(): Names {
  const r = randomToken().toUpperCase();
  return { objects: `VTB_${r}_OBJ`, labels: `VTB_${r}_LBL`, fleet: `VTB_${r}_FLEET`, label: `l-${r.toLowerCase()}` };
}

/** Deletes the buckets' streams. */
export async function deleteBuckets(url: string, n: Names): Promise<void> {
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: url, timeout: 2000, maxReconnectAttempts: 0 });
    const jsm = await nc.jetstreamManager({ timeout: 2000 });
    for (const s of [`OBJ_${n.objects}`, `KV_${n.labels}`, `KV_${n.fleet}`]) await jsm.streams.delete(s).catch(() => undefined);
  } catch {
    // a private server that is gone took its buckets with it
  } finally {
    await nc?.close().catch(() => undefined);
  }
}

export function pushArgs(url: string, n: Names, dir: string, ...more: string[]): string[] {
  return ['policies', 'push', dir, '--nats', url, '--label', n.label, '--bucket', n.objects, '--labels-bucket', n.labels, ...more];
}

export interface ReplicaOptions {
  readonly url: string;
  readonly names: Names;
  readonly instance: string;
  readonly cacheDir?: string;
  readonly workers?: number;
  readonly pollIntervalMs?: number;
  readonly timeoutMs?: number;
  readonly heartbeatMs?: number;
  readonly maxBundleBytes?: number;
  /** Wait for "verdict serving" (default true). */
  readonly wait?: boolean;
}

/** `verdict serve --policy-source nats://…/LABEL` with its own cache directory. */
export async function startReplica(o: ReplicaOptions): Promise<VerdictProcess & { cacheDir: string }> {
  const cacheDir = o.cacheDir ?? makeTempDir('bundle-cache');
  const config = {
    events: { instanceId: o.instance },
    policySource: { bucket: o.names.objects, labelsBucket: o.names.labels, cacheDir, pollIntervalMs: o.pollIntervalMs ?? 10_000, timeoutMs: o.timeoutMs ?? 5000, ...(o.maxBundleBytes ? { maxBundleBytes: o.maxBundleBytes } : {}) },
    fleet: { bucket: o.names.fleet, heartbeatMs: o.heartbeatMs ?? 1000 },
  };
  const cfgDir = makeTempDir('bundle-cfg');
  mkdirSync(cfgDir, { recursive: true });
  const cfg = path.join(cfgDir, 'verdict.yaml');
  writeFileSync(cfg, toYaml(config));
  const url = `${o.url}/${o.names.label}`;
  const proc = spawnVerdict(['serve', '--policy-source', url, '--listen', '127.0.0.1:0', '--no-events', '--config', cfg, '--workers', String(o.workers ?? 1)], { name: `replica ${o.instance}` });
  const out = Object.assign(proc, { cacheDir });
  if (o.wait === false) return out;
  const serving = await proc.waitForLog(isServingLine, 20_000);
  const listen = String(serving.listen);
  proc.address = listen;
  proc.port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  return out;
}

/**
 * Writes a bundle straight into the buckets and points the label at it, as an operator with write
 * access could, bypassing every check `verdict policies push` makes. `bytes` may be forged.
 */
export async function forceBundle(nc: NatsConnection, n: Names, bundle: BuiltBundle, bytes: Uint8Array = bundle.bytes): Promise<void> {
  const buckets: BundleBuckets = { objects: n.objects, labels: n.labels };
  const store = await BundleStore.open(nc, buckets, { create: true, limits: DEFAULT_BUNDLE_LIMITS, timeoutMs: 5000 });
  const os = await nc.jetstream().views.os(n.objects);
  await os.putBlob({ name: bundle.bundle.revision }, bytes);
  const current = await store.label(n.label);
  const { createHash } = await import('node:crypto');
  await store.setLabel(
    n.label,
    {
      schema: LABEL_SCHEMA,
      revision: bundle.bundle.revision,
      digest: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.length,
      files: bundle.bundle.files.length,
      at: new Date().toISOString(),
      by: 'test (forced)',
      action: 'push',
      message: 'forced past verdict policies push',
      previous: current?.record.revision ?? null,
      tests: { run: false, passed: 0, failed: 0, suiteErrors: 0 },
    },
    current?.kvRevision ?? null,
  );
}

/** A bundle of one document.yaml with `text` (not compiled: it may not load). */
export function bundleOf(text: string): BuiltBundle {
  return buildBundle([{ path: 'document.yaml', text, sha256: sha256Hex(text) }], { createdAt: new Date(), createdBy: 'test', message: '', tests: { run: false, passed: 0, failed: 0, suiteErrors: 0 } });
}
