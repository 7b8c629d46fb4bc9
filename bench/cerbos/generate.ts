/**
 * The Cerbos counterpart of bench/generate/large-policy-set.ts: the same N resource types (default
 * 1,000) with the same 10 rules each, as Cerbos resource policies, for the "large" workload.
 *
 * It mirrors the Verdict generator draw for draw (same PRNG, same seed, same order of draws), so
 * type i gets the same name, department, thresholds and network here as there. Because a mirror
 * can drift when the Verdict generator changes, `generateCerbosLargePolicySet` rebuilds the Verdict
 * set too and refuses to continue if any mirrored parameter does not appear in the Verdict text.
 *
 * Differences that are only about Cerbos's policy model:
 *  - the derived role `owner` (identical in every Verdict policy) is one derivedRoles policy that
 *    every resource policy imports;
 *  - `context.network` is `P.attr.context.network` (the benchmark sends the context as the principal
 *    attribute `context`, see bench/cerbos/protocol.ts);
 *  - rules without roles get `roles: ["*"]` (Cerbos requires roles or derived roles on a rule);
 *  - the deny rule restricted to a role (`deny-contractors-confidential`, roles [contractor]) is a
 *    Cerbos deny rule for every role with `"contractor" in P.roles` in its condition: Cerbos
 *    evaluates each of the principal's roles on its own and ALLOWs when any one role is allowed,
 *    so a role-scoped DENY would not bind a subject who also holds an allowed role (Verdict's deny
 *    overrides every allow, whatever roles the subject holds).
 *
 *   node dist/bench/cerbos/generate.js <dir> [--types 1000] [--seed 1]
 */
import { pathToFileURL } from 'node:url';
import { DEPARTMENTS, generateLargePolicySet, prng, RULES_PER_TYPE, writePolicyFiles, type GeneratedType, type LargePolicySetOptions, type PolicyFile } from '../generate/large-policy-set.js';

const DOMAINS = ['billing', 'crm', 'hr', 'inventory', 'support', 'analytics', 'identity', 'content', 'logistics', 'payments'];
const NOUNS = ['invoice', 'account', 'contract', 'ticket', 'order', 'shipment', 'report', 'dashboard', 'profile', 'asset', 'budget', 'campaign', 'case', 'quote', 'payout', 'license', 'device', 'article', 'project', 'vendor'];

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

interface TypeParameters {
  readonly type: GeneratedType;
  readonly domain: string;
  readonly noun: string;
  readonly confidentialAt: number;
  readonly approvalFactor: string;
  readonly exportNetwork: string;
}

/** The draws of large-policy-set.ts's policyFor(i), in the same order. */
function parametersFor(i: number, rand: () => number): TypeParameters {
  const domain = DOMAINS[i % DOMAINS.length]!;
  const noun = NOUNS[Math.floor(i / DOMAINS.length) % NOUNS.length]!;
  const name = `${domain}.${noun}.${String(i).padStart(4, '0')}`;
  const namespace = `${noun}${i}`;
  const department = pick(rand, DEPARTMENTS);
  const shareTag = `${department}-shared`;
  const confidentialAt = 2 + Math.floor(rand() * 2);
  const approvalFactor = (1 + Math.floor(rand() * 4) * 0.5).toFixed(1);
  const exportNetwork = pick(rand, ['corp', 'vpn']);
  const actions = ['read', 'list', 'create', 'update', 'delete', 'share', 'approve', 'export', `${namespace}:archive`, `${namespace}:restore`, `${namespace}:export`];
  return { type: { name, namespace, department, shareTag, actions }, domain, noun, confidentialAt, approvalFactor, exportNetwork };
}

const ROLES_FILE: PolicyFile = {
  path: 'generated_roles.yaml',
  text: `# Generated benchmark derived roles: do not edit (bench/cerbos/generate.ts)
apiVersion: api.cerbos.dev/v1
derivedRoles:
  name: generated_roles
  definitions:
    - name: owner
      parentRoles: [employee]
      condition:
        match:
          expr: has(R.attr.owner) && R.attr.owner == P.id
`,
};

function cerbosPolicy(i: number, p: TypeParameters): string {
  const { name, namespace, shareTag } = p.type;
  return `# Generated benchmark policy ${i}: do not edit (bench/cerbos/generate.ts)
apiVersion: api.cerbos.dev/v1
description: Generated policy for ${p.domain} ${p.noun}s (type ${i})
resourcePolicy:
  resource: ${name}
  version: default
  importDerivedRoles: [generated_roles]
  variables:
    local:
      classification: 'has(R.attr.classification) ? R.attr.classification : 1'
      same_department: >-
        has(P.attr.department) && has(R.attr.department) &&
        P.attr.department == R.attr.department
  rules:
    - name: deny-changes-when-locked
      actions: [update, delete, share]
      effect: EFFECT_DENY
      roles: ["*"]
      condition:
        match:
          expr: has(R.attr.locked) && R.attr.locked
    # Verdict: roles [contractor]. Cerbos decides per role and lets one role's ALLOW win over
    # another role's DENY, so "roles: [contractor]" would not bind an employee who is also a
    # contractor; the role test moves into the condition of a rule for every role.
    - name: deny-contractors-confidential
      actions: ["*"]
      effect: EFFECT_DENY
      roles: ["*"]
      condition:
        match:
          expr: '"contractor" in P.roles && V.classification >= ${p.confidentialAt}'
    - name: deny-export-off-network
      actions: [export, "${namespace}:export"]
      effect: EFFECT_DENY
      roles: ["*"]
      condition:
        match:
          expr: '!has(P.attr.context.network) || P.attr.context.network != "${p.exportNetwork}"'
    - name: owners-manage
      actions: [read, update, delete, share, "${namespace}:*"]
      effect: EFFECT_ALLOW
      derivedRoles: [owner]
    - name: staff-read
      actions: [read, list]
      effect: EFFECT_ALLOW
      roles: [employee, viewer]
    - name: department-editors-write
      actions: [create, update]
      effect: EFFECT_ALLOW
      roles: [editor]
      condition:
        match:
          expr: V.same_department
    - name: managers-approve-within-limit
      actions: [approve]
      effect: EFFECT_ALLOW
      roles: [manager]
      condition:
        match:
          expr: >-
            has(R.attr.amount) && has(P.attr.approvalLimit) &&
            R.attr.amount <= P.attr.approvalLimit * ${p.approvalFactor}
    - name: admins-administer
      actions: [delete, "${namespace}:*"]
      effect: EFFECT_ALLOW
      roles: [admin]
    - name: anyone-reads-published-public
      actions: [read]
      effect: EFFECT_ALLOW
      roles: ["*"]
      condition:
        match:
          expr: >-
            has(R.attr.status) && R.attr.status == "published" &&
            V.classification == 0
    - name: tagged-sharing
      actions: [share, export]
      effect: EFFECT_ALLOW
      roles: [employee]
      condition:
        match:
          expr: >-
            has(R.attr.tags) &&
            R.attr.tags.exists(t, t in ["${shareTag}", "public"])
`;
}

/** Throws if the mirrored draws for type i do not match what the Verdict generator wrote. */
function assertMirrors(i: number, p: TypeParameters, verdictType: GeneratedType | undefined, verdictFile: PolicyFile | undefined): void {
  const problems: string[] = [];
  if (!verdictType || !verdictFile) problems.push('missing in the Verdict set');
  else {
    if (JSON.stringify(verdictType) !== JSON.stringify(p.type)) problems.push(`type ${JSON.stringify(verdictType)} != ${JSON.stringify(p.type)}`);
    const expected = [
      `variables.classification >= ${p.confidentialAt}`,
      `subject.attributes.approvalLimit * ${p.approvalFactor}`,
      `context.network != "${p.exportNetwork}"`,
      `t in ["${p.type.shareTag}", "public"]`,
    ];
    for (const e of expected) if (!verdictFile.text.includes(e)) problems.push(`Verdict text lacks ${e}`);
    if ((verdictFile.text.match(/^ {2}- name: /gm) ?? []).length !== RULES_PER_TYPE + 1) problems.push(`Verdict policy no longer has ${RULES_PER_TYPE} rules + 1 derived role`);
  }
  if (problems.length > 0) {
    throw new Error(`bench/cerbos/generate.ts no longer mirrors bench/generate/large-policy-set.ts (type ${i}): ${problems.join('; ')}`);
  }
}

export interface CerbosLargePolicySet {
  readonly files: PolicyFile[];
  readonly types: GeneratedType[];
}

/** The Cerbos set in memory, checked against the Verdict set of the same options. */
export function generateCerbosLargePolicySet(options: LargePolicySetOptions = {}): CerbosLargePolicySet {
  const count = options.types ?? 1000;
  const rand = prng(options.seed ?? 1);
  const verdict = generateLargePolicySet(options);
  const files: PolicyFile[] = [ROLES_FILE];
  const types: GeneratedType[] = [];
  for (let i = 0; i < count; i++) {
    const p = parametersFor(i, rand);
    assertMirrors(i, p, verdict.types[i], verdict.files[i]);
    files.push({ path: `${p.domain}/${p.noun}/${p.type.name}.yaml`, text: cerbosPolicy(i, p) });
    types.push(p.type);
  }
  return { files, types };
}

/** Generates the Cerbos set and writes it to `dir` (emptied first). */
export async function writeCerbosLargePolicySet(dir: string, options: LargePolicySetOptions = {}): Promise<CerbosLargePolicySet> {
  const set = generateCerbosLargePolicySet(options);
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
    process.stderr.write('usage: node dist/bench/cerbos/generate.js <dir> [--types N] [--seed N]\n');
    process.exit(2);
  }
  const set = await writeCerbosLargePolicySet(dir, { types: flag('types'), seed: flag('seed') });
  process.stdout.write(`wrote ${set.files.length} Cerbos policy files (${set.types.length} resource policies, ${set.types.length * RULES_PER_TYPE} rules) to ${dir}\n`);
}
