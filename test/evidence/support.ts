/** Helpers for the policy evidence tests: servers with a revisions bucket, policy edits, request generation, stream reads. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createAuthorizationClient, type JsonCheckRequest } from '../../src/grpc/client.js';
import { POLICY_SCHEMA } from '../../src/evidence/policy-record.js';
import { EVENT_SCHEMA } from '../../src/events/event.js';
import { randomToken, REPO_ROOT, type StoredMessage } from '../support/events-harness.js';

export const POLICY_V1 = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: employees-read
    actions: [read]
    effect: allow
    roles: [employee]
  - name: deny-suspended
    actions: ["*"]
    effect: deny
    when: has(subject.attributes.suspended) && subject.attributes.suspended
`;

/** The same set with the read rule renamed and widened to edits: a new revision. */
export const POLICY_V2 = POLICY_V1.replace(`  - name: employees-read
    actions: [read]`, `  - name: staff-read-and-edit
    actions: [read, edit]`);

/** A unique Object Store bucket name for one test (its stream OBJ_<name> is deleted at cleanup). */
export function uniqueBucket(): string {
  return `VT_REV_${randomToken(4).toUpperCase()}`;
}

export const policyRecords = (messages: readonly StoredMessage[]) => messages.filter((m) => m.data.schema === POLICY_SCHEMA);
export const decisionEvents = (messages: readonly StoredMessage[]) => messages.filter((m) => m.data.schema === EVENT_SCHEMA);
export const seqOf = (m: StoredMessage) => (m.data.chain as { seq: number }).seq;
export const chainOf = (m: StoredMessage) => (m.data.chain as { id: string }).id;

/** A client on its own connection (a cluster gives each new connection to the next worker). */
export function freshClient(address: string): ReturnType<typeof createAuthorizationClient> {
  return createAuthorizationClient(address, undefined, { 'grpc.use_local_subchannel_pool': 1 });
}

/** Every request of the example policies' test suites. */
function suiteRequests(): JsonCheckRequest[] {
  const out: JsonCheckRequest[] = [];
  for (const suite of ['common_test.yaml', 'documents/document_test.yaml', 'documents/folder_test.yaml', 'reports/report_test.yaml']) {
    const doc = parseYaml(readFileSync(path.join(REPO_ROOT, 'policies', suite), 'utf8')) as { tests: { request: JsonCheckRequest & { action: string } }[] };
    for (const t of doc.tests) if (t.request?.resource) out.push(t.request);
  }
  return out;
}

/** A small deterministic PRNG (mulberry32), so a failing run can be reproduced. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` requests for the example policies: the test suites' requests, and mixes of their subjects,
 * actions, resources and contexts (so owners, departments, clearances, holds and retention dates
 * meet in combinations the suites do not list).
 */
export function exampleRequests(n: number, seed = 17): JsonCheckRequest[] {
  const base = suiteRequests();
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const out: JsonCheckRequest[] = [];
  for (let i = 0; i < n; i++) {
    if (i < base.length) {
      out.push(base[i]!);
      continue;
    }
    const s = pick(base);
    const r = pick(base.filter((b) => b.resource.type === pick(base).resource.type));
    out.push({ subject: s.subject, action: pick(base).action, resource: { ...r.resource, id: `r-${i}` }, ...(rnd() < 0.5 && pick(base).context ? { context: pick(base).context } : {}) });
  }
  return out;
}
