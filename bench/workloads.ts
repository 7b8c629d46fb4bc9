/**
 * Realistic requests for the benchmarks, in the engine's JSON form (CheckRequest) and, via
 * bench/grpc/messages.ts, in the proto-loader form the gRPC load generator sends.
 *
 *  - "example": a handful of requests against the example policy set in policies/ (documents,
 *    folders, reports): owners, editors, auditors, admins, contractors; allows and denies.
 *  - "large":   requests spread over the generated set's resource types (bench/generate);
 *               "large:N" for a set of N types (default 1,000).
 */
import type { CheckRequest } from '../src/engine/index.js';
import { DEPARTMENTS, STATIC_ROLES, generateLargePolicySet, prng, type GeneratedType, type LargePolicySetOptions } from './generate/large-policy-set.js';

export type WorkloadName = 'example' | 'large' | `large:${number}`;

/** The type count of a "large" workload. */
function largeTypes(name: WorkloadName): LargePolicySetOptions {
  const n = name.startsWith('large:') ? Number(name.slice(6)) : undefined;
  return n ? { types: n } : {};
}

/** One subject with many (action, resource) pairs: the shape of CheckBatch. */
export interface BatchRequest {
  readonly subject: CheckRequest['subject'];
  readonly items: { readonly action: string; readonly resource: CheckRequest['resource'] }[];
  readonly context: CheckRequest['context'];
}

const CONTEXT = { ip: '10.20.30.40', userAgent: 'svc-gateway/2.3 (+grpc)', network: 'corp' };

const subjects = {
  alice: { type: 'user', id: 'alice', roles: ['employee'], attributes: { department: 'eng', clearance: 2, email: 'alice@example.com' } },
  bob: { type: 'user', id: 'bob', roles: ['employee', 'editor'], attributes: { department: 'eng', clearance: 1, email: 'bob@example.com' } },
  carol: { type: 'user', id: 'carol', roles: ['employee'], attributes: { department: 'eng', clearance: 1, email: 'carol@example.com' } },
  dave: { type: 'user', id: 'dave', roles: ['employee', 'auditor'], attributes: { department: 'audit', clearance: 3 } },
  erin: { type: 'user', id: 'erin', roles: ['employee', 'admin'], attributes: { department: 'it', clearance: 2 } },
  frank: { type: 'user', id: 'frank', roles: ['viewer'], attributes: { department: 'external', clearance: 1, company: 'Acme Consulting' } },
} as const;

function req(subject: CheckRequest['subject'], action: string, type: string, id: string, attributes: Record<string, unknown>): CheckRequest {
  return { subject: { ...subject, roles: [...subject.roles] }, action, resource: { type, id, attributes: attributes as CheckRequest['resource']['attributes'] }, context: CONTEXT };
}

/** A handful of requests against policies/: the mix a document service would send. */
export function exampleRequests(): CheckRequest[] {
  return [
    // owner edits her own draft: ALLOW owners-manage (derived role owner)
    req(subjects.alice, 'edit', 'document', 'doc-1001', { owner: 'alice', department: 'eng', classification: 1, status: 'draft', tags: ['design', 'q3'] }),
    // department editor publishes a colleague's draft: ALLOW department-editors-edit
    req(subjects.bob, 'publish', 'document', 'doc-1002', { owner: 'alice', department: 'eng', classification: 1, status: 'draft' }),
    // colleague reads a published document of her department: ALLOW department-reads-published
    req(subjects.carol, 'read', 'document', 'doc-1003', { owner: 'alice', department: 'eng', classification: 1, status: 'published' }),
    // auditor reads a confidential document: ALLOW auditors-read
    req(subjects.dave, 'read', 'document', 'doc-1004', { owner: 'bob', department: 'eng', classification: 2, status: 'published', editors: ['carol'], viewers: ['frank'] }),
    // admin deletes a document on legal hold: DENY deny-delete-on-legal-hold
    req(subjects.erin, 'delete', 'document', 'doc-1005', { owner: 'bob', department: 'eng', classification: 1, legalHold: true }),
    // contractor on the sharing list reads: ALLOW listed-viewers-read
    req(subjects.frank, 'read', 'document', 'doc-1006', { owner: 'alice', department: 'eng', classification: 1, status: 'draft', viewers: ['frank', 'carol'] }),
    // owner deletes a document still under retention: DENY deny-delete-under-retention (timestamp)
    req(subjects.alice, 'delete', 'document', 'doc-1007', { owner: 'alice', department: 'eng', classification: 1, retainUntil: '2099-12-31T00:00:00Z' }),
    // colleague edits someone else's draft: DENY NO_MATCHING_RULE
    req(subjects.carol, 'edit', 'document', 'doc-1008', { owner: 'alice', department: 'eng', classification: 1, status: 'draft' }),
    // department member adds a document to a folder: ALLOW department-uses-folders
    req(subjects.carol, 'create', 'folder', 'fld-17', { owner: 'alice', department: 'eng', itemCount: 12 }),
    // owner runs a report: ALLOW owners-manage-reports ("report:*")
    req(subjects.alice, 'report:run', 'report', 'rpt-9', { owner: 'alice', department: 'eng', classification: 1 }),
    // department member exports a confidential report: DENY deny-confidential-export
    req(subjects.carol, 'report:export', 'report', 'rpt-10', { owner: 'alice', department: 'eng', classification: 2 }),
    // admin reads a report: DENY (admins maintain but do not read reports)
    req(subjects.erin, 'read', 'report', 'rpt-11', { owner: 'alice', department: 'eng', classification: 1 }),
  ];
}

/** CheckBatch against policies/: one subject, 10 resources × 3 actions (a UI rendering a list). */
export function exampleBatches(): BatchRequest[] {
  const out: BatchRequest[] = [];
  for (const subject of [subjects.alice, subjects.bob, subjects.dave, subjects.frank]) {
    const items: BatchRequest['items'][number][] = [];
    for (let i = 0; i < 10; i++) {
      const kind = i < 6 ? 'document' : i < 8 ? 'folder' : 'report';
      const owner = i % 3 === 0 ? subject.id : 'alice';
      const attributes: Record<string, unknown> =
        kind === 'document'
          ? { owner, department: 'eng', classification: i % 4 === 3 ? 2 : 1, status: i % 2 ? 'published' : 'draft', viewers: ['frank'] }
          : kind === 'folder'
            ? { owner, department: 'eng', itemCount: i }
            : { owner, department: 'eng', classification: i % 2 ? 2 : 1 };
      const actions = kind === 'document' ? ['read', 'edit', 'delete'] : kind === 'folder' ? ['list', 'create', 'delete'] : ['read', 'report:run', 'report:export'];
      for (const action of actions) {
        items.push({ action, resource: { type: kind, id: `${kind}-${i}`, attributes: attributes as CheckRequest['resource']['attributes'] } });
      }
    }
    out.push({ subject: { ...subject, roles: [...subject.roles] }, items, context: CONTEXT });
  }
  return out;
}

interface LargeWorld {
  readonly types: readonly GeneratedType[];
  readonly subjects: CheckRequest['subject'][];
  readonly rand: () => number;
}

function largeWorld(options: LargePolicySetOptions, seed: number): LargeWorld {
  const { types } = generateLargePolicySet(options);
  const rand = prng(seed);
  const subjects: CheckRequest['subject'][] = [];
  for (let i = 0; i < 64; i++) {
    const roles = new Set<string>(['employee']);
    if (rand() < 0.1) roles.clear();
    const extra = STATIC_ROLES[Math.floor(rand() * STATIC_ROLES.length)]!;
    roles.add(extra);
    if (rand() < 0.2) roles.add(STATIC_ROLES[Math.floor(rand() * STATIC_ROLES.length)]!);
    subjects.push({
      type: 'user',
      id: `user-${i}`,
      roles: [...roles],
      attributes: {
        department: DEPARTMENTS[Math.floor(rand() * DEPARTMENTS.length)]!,
        approvalLimit: Math.round(rand() * 20) * 500,
        email: `user-${i}@example.com`,
      },
    });
  }
  return { types, subjects, rand };
}

function largeResource(world: LargeWorld, subject: CheckRequest['subject'], type: GeneratedType, n: number): CheckRequest['resource'] {
  const { rand } = world;
  const attributes: Record<string, unknown> = {
    owner: rand() < 0.3 ? subject.id : `user-${Math.floor(rand() * 64)}`,
    department: rand() < 0.5 ? type.department : DEPARTMENTS[Math.floor(rand() * DEPARTMENTS.length)]!,
    classification: Math.floor(rand() * 4),
    status: rand() < 0.5 ? 'published' : 'draft',
    amount: Math.round(rand() * 10_000),
    tags: rand() < 0.3 ? [type.shareTag, 'q3'] : ['q3', 'internal'],
  };
  if (rand() < 0.1) attributes.locked = true;
  return { type: type.name, id: `${type.namespace}-${n}`, attributes: attributes as CheckRequest['resource']['attributes'] };
}

function largeContext(rand: () => number): CheckRequest['context'] {
  const network = rand() < 0.8 ? 'corp' : rand() < 0.5 ? 'vpn' : 'home';
  return { ip: network === 'home' ? '203.0.113.7' : '10.1.2.3', network, userAgent: 'svc-gateway/2.3 (+grpc)' };
}

/** `count` requests over random types of the generated set (same seed → same requests). */
export function largeRequests(count = 4096, options: LargePolicySetOptions = {}, seed = 7): CheckRequest[] {
  const world = largeWorld(options, seed);
  const out: CheckRequest[] = [];
  for (let n = 0; n < count; n++) {
    const subject = world.subjects[Math.floor(world.rand() * world.subjects.length)]!;
    const type = world.types[Math.floor(world.rand() * world.types.length)]!;
    const action = type.actions[Math.floor(world.rand() * type.actions.length)]!;
    out.push({ subject, action, resource: largeResource(world, subject, type, n), context: largeContext(world.rand) });
  }
  return out;
}

/** CheckBatch over the generated set: 10 random resources × 3 of their type's actions. */
export function largeBatches(count = 256, options: LargePolicySetOptions = {}, seed = 11): BatchRequest[] {
  const world = largeWorld(options, seed);
  const out: BatchRequest[] = [];
  for (let b = 0; b < count; b++) {
    const subject = world.subjects[Math.floor(world.rand() * world.subjects.length)]!;
    const items: BatchRequest['items'][number][] = [];
    for (let r = 0; r < 10; r++) {
      const type = world.types[Math.floor(world.rand() * world.types.length)]!;
      const resource = largeResource(world, subject, type, b * 10 + r);
      const start = Math.floor(world.rand() * type.actions.length);
      for (let a = 0; a < 3; a++) items.push({ action: type.actions[(start + a) % type.actions.length]!, resource });
    }
    out.push({ subject, items, context: largeContext(world.rand) });
  }
  return out;
}

export function workloadRequests(name: WorkloadName): CheckRequest[] {
  return name === 'example' ? exampleRequests() : largeRequests(4096, largeTypes(name));
}

export function workloadBatches(name: WorkloadName): BatchRequest[] {
  return name === 'example' ? exampleBatches() : largeBatches(256, largeTypes(name));
}
