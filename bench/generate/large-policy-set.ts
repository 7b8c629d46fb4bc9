/**
 * Generator of a large, realistic policy set: N resource types (default 1,000) with 10 rules each,
 * mixing role-only rules, conditions on subject/resource/context attributes, a derived role, deny
 * rules and action globs. Deterministic for a given seed, so the engine bench, the gRPC bench's load
 * generators (which rebuild the type list to make requests) and a later Cerbos comparison all see
 * the same set.
 *
 *   node dist/bench/generate/large-policy-set.js <dir> [--types 1000] [--seed 1] [--schemas]
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface PolicyFile {
  readonly path: string;
  readonly text: string;
}

export interface LargePolicySetOptions {
  /** Number of resource types (one policy file each). Default 1,000. */
  readonly types?: number;
  /** PRNG seed; the same seed gives the same files. Default 1. */
  readonly seed?: number;
  /**
   * Also write `_declarations.yaml` (kind: Declarations): the static roles and a JSON Schema per
   * type (each with its own department enum, so no two are the same text) and for subjects. Default false.
   */
  readonly schemas?: boolean;
}

/** What a load generator needs to build requests that exercise a generated type. */
export interface GeneratedType {
  /** Resource type name, e.g. "billing.invoice.0042". */
  readonly name: string;
  /** Namespace of the type's own actions (matched by the glob "<ns>:*"). */
  readonly namespace: string;
  /** Department that owns the type's resources by default. */
  readonly department: string;
  /** Tag that the type's sharing rule accepts. */
  readonly shareTag: string;
  /** Every action a rule of the type names literally, plus glob-only ones. */
  readonly actions: readonly string[];
}

export interface LargePolicySet {
  readonly files: PolicyFile[];
  readonly types: GeneratedType[];
  readonly rulesPerType: number;
  readonly ruleCount: number;
}

export const RULES_PER_TYPE = 10;
export const DEPARTMENTS = ['eng', 'sales', 'finance', 'hr', 'legal', 'ops', 'support', 'marketing'] as const;
export const STATIC_ROLES = ['employee', 'editor', 'manager', 'admin', 'viewer', 'contractor'] as const;
const DOMAINS = ['billing', 'crm', 'hr', 'inventory', 'support', 'analytics', 'identity', 'content', 'logistics', 'payments'];
const NOUNS = ['invoice', 'account', 'contract', 'ticket', 'order', 'shipment', 'report', 'dashboard', 'profile', 'asset', 'budget', 'campaign', 'case', 'quote', 'payout', 'license', 'device', 'article', 'project', 'vendor'];

/** mulberry32: tiny, fast, good enough for picking benchmark data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

/** One policy document for type number `i`: 2 variables, 1 derived role, 3 deny + 7 allow rules. */
function policyFor(i: number, rand: () => number): { type: GeneratedType; file: PolicyFile } {
  const domain = DOMAINS[i % DOMAINS.length]!;
  const noun = NOUNS[Math.floor(i / DOMAINS.length) % NOUNS.length]!;
  const name = `${domain}.${noun}.${String(i).padStart(4, '0')}`;
  const namespace = `${noun}${i}`;
  const department = pick(rand, DEPARTMENTS);
  const shareTag = `${department}-shared`;
  const confidentialAt = 2 + Math.floor(rand() * 2); // 2 or 3
  const approvalFactor = (1 + Math.floor(rand() * 4) * 0.5).toFixed(1); // a CEL double literal
  const exportNetwork = pick(rand, ['corp', 'vpn']);
  const text = `# Generated benchmark policy ${i}: do not edit (bench/generate/large-policy-set.ts)
apiVersion: verdict/v1
kind: ResourcePolicy
resource: ${name}
description: Generated policy for ${domain} ${noun}s (type ${i})
variables:
  classification: >-
    has(resource.attributes.classification) ? resource.attributes.classification : 1
  same_department: >-
    has(subject.attributes.department) && has(resource.attributes.department) &&
    subject.attributes.department == resource.attributes.department
derivedRoles:
  - name: owner
    parentRoles: [employee]
    when: has(resource.attributes.owner) && resource.attributes.owner == subject.id
rules:
  - name: deny-changes-when-locked
    actions: [update, delete, share]
    effect: deny
    when: has(resource.attributes.locked) && resource.attributes.locked
  - name: deny-contractors-confidential
    actions: ["*"]
    effect: deny
    roles: [contractor]
    when: variables.classification >= ${confidentialAt}
  - name: deny-export-off-network
    actions: [export, "${namespace}:export"]
    effect: deny
    when: '!has(context.network) || context.network != "${exportNetwork}"'
  - name: owners-manage
    actions: [read, update, delete, share, "${namespace}:*"]
    effect: allow
    roles: [owner]
  - name: staff-read
    actions: [read, list]
    effect: allow
    roles: [employee, viewer]
  - name: department-editors-write
    actions: [create, update]
    effect: allow
    roles: [editor]
    when: variables.same_department
  - name: managers-approve-within-limit
    actions: [approve]
    effect: allow
    roles: [manager]
    when: >-
      has(resource.attributes.amount) && has(subject.attributes.approvalLimit) &&
      resource.attributes.amount <= subject.attributes.approvalLimit * ${approvalFactor}
  - name: admins-administer
    actions: [delete, "${namespace}:*"]
    effect: allow
    roles: [admin]
  - name: anyone-reads-published-public
    actions: [read]
    effect: allow
    roles: ["*"]
    when: >-
      has(resource.attributes.status) && resource.attributes.status == "published" &&
      variables.classification == 0
  - name: tagged-sharing
    actions: [share, export]
    effect: allow
    roles: [employee]
    when: >-
      has(resource.attributes.tags) &&
      resource.attributes.tags.exists(t, t in ["${shareTag}", "public"])
`;
  const actions = ['read', 'list', 'create', 'update', 'delete', 'share', 'approve', 'export', `${namespace}:archive`, `${namespace}:restore`, `${namespace}:export`];
  return {
    type: { name, namespace, department, shareTag, actions },
    file: { path: `${domain}/${noun}/${name}.yaml`, text },
  };
}

/** The large set in memory: files for compilePolicySet, and the type list for request builders. */
export function generateLargePolicySet(options: LargePolicySetOptions = {}): LargePolicySet {
  const count = options.types ?? 1000;
  const rand = prng(options.seed ?? 1);
  const files: PolicyFile[] = [];
  const types: GeneratedType[] = [];
  for (let i = 0; i < count; i++) {
    const { type, file } = policyFor(i, rand);
    files.push(file);
    types.push(type);
  }
  if (options.schemas) files.push(declarationsFor(types));
  return { files, types, rulesPerType: RULES_PER_TYPE, ruleCount: count * RULES_PER_TYPE };
}

/** The set's declarations: roles, the subject schema, and one resource schema per type. */
function declarationsFor(types: readonly GeneratedType[]): PolicyFile {
  const lines = [
    '# Generated benchmark declarations: do not edit (bench/generate/large-policy-set.ts)',
    'apiVersion: verdict/v1',
    'kind: Declarations',
    `roles: [${STATIC_ROLES.join(', ')}]`,
    'schemas:',
    '  mode: warn',
    '  subject:',
    '    type: object',
    '    properties:',
    `      department: { type: string, enum: [${DEPARTMENTS.join(', ')}] }`,
    '      approvalLimit: { type: number, minimum: 0 }',
    '    additionalProperties: false',
    '  resources:',
  ];
  for (const t of types) {
    lines.push(
      `    ${t.name}:`,
      '      type: object',
      '      properties:',
      '        classification: { type: integer, minimum: 0, maximum: 3 }',
      `        department: { type: string, enum: [${t.department}, ${DEPARTMENTS.find((d) => d !== t.department)}] }`,
      '        owner: { type: string }',
      '        locked: { type: boolean }',
      '        amount: { type: number, minimum: 0 }',
      '        status: { type: string, enum: [draft, published, archived] }',
      `        tags: { type: array, items: { type: string }, maxItems: 32 }`,
      '      additionalProperties: false',
    );
  }
  return { path: '_declarations.yaml', text: `${lines.join('\n')}\n` };
}

/** Just the files ({path, text}[]), as compilePolicySet takes them. */
export function largePolicySetFiles(options: LargePolicySetOptions = {}): PolicyFile[] {
  return generateLargePolicySet(options).files;
}

/** Writes files under `dir` (emptied first), creating subdirectories; returns `dir`. */
export async function writePolicyFiles(dir: string, files: readonly PolicyFile[]): Promise<string> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const dirs = new Set(files.map((f) => path.dirname(path.join(dir, f.path))));
  for (const d of dirs) await mkdir(d, { recursive: true });
  await Promise.all(files.map((f) => writeFile(path.join(dir, f.path), f.text)));
  return dir;
}

/** Generates the large set and writes it to `dir` (for servers under test). */
export async function writeLargePolicySet(dir: string, options: LargePolicySetOptions = {}): Promise<LargePolicySet> {
  const set = generateLargePolicySet(options);
  await writePolicyFiles(dir, set.files);
  return set;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const dir = args.find((a, i) => !a.startsWith('--') && !(args[i - 1] ?? '').startsWith('--'));
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  if (!dir) {
    process.stderr.write('usage: node dist/bench/generate/large-policy-set.js <dir> [--types N] [--seed N] [--schemas]\n');
    process.exit(2);
  }
  const set = await writeLargePolicySet(dir, { types: flag('types'), seed: flag('seed'), schemas: args.includes('--schemas') });
  process.stdout.write(`wrote ${set.files.length} policy files (${set.ruleCount} rules) to ${dir}\n`);
}
