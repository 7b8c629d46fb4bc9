import type { Node } from 'yaml';
import { isMap, yamlLibrary } from '../files/yaml-lazy.js';
import type {
  DerivedRoleDefinition,
  Effect,
  PolicySourceFile,
  ResourcePolicyDocument,
  RuleDefinition,
  VariableDefinition,
} from './document.js';
import type { PolicyIssue, SourcePosition } from './issues.js';
import { readLimits } from './parse-limits.js';
import { DECLARATIONS_KIND, kindOf, readDeclarations, type DeclarationsDocument } from './declarations.js';
import { fastYamlDocuments } from './yaml-fast.js';
import { YamlReader } from './yaml-reader.js';

export const API_VERSION = 'verdict/v1';
const POLICY_FIELDS = ['apiVersion', 'kind', 'resource', 'description', 'variables', 'derivedRoles', 'rules', 'limits'] as const;
const RULE_FIELDS = ['name', 'description', 'actions', 'effect', 'roles', 'when'] as const;
const DERIVED_ROLE_FIELDS = ['name', 'parentRoles', 'when'] as const;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:\-]*$/;
const RESOURCE_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.:\-/]*$/;
/** An action pattern: a name, "*", or a prefix glob ending in "*" such as "report:*". */
const ACTION_PATTERN = /^(\*|[A-Za-z0-9_.:\-/]+\*?)$/;

export interface ParsedPolicyFile {
  readonly documents: ResourcePolicyDocument[];
  /** `kind: Declarations` documents (src/policy/declarations.ts). */
  readonly declarations: DeclarationsDocument[];
  readonly issues: PolicyIssue[];
  /**
   * False for a fast read (yaml-fast.ts): it found no problem, and its positions are all line 0.
   * A caller that finds a problem later reads the file again with `precise`.
   */
  readonly precise: boolean;
}

/**
 * Parses and structurally validates one policy file; never throws, every problem is an issue.
 * Unless `precise`, tries the fast read first; any problem sends it the precise way.
 */
export function parsePolicyFile(source: PolicySourceFile, precise = true): ParsedPolicyFile {
  if (!precise) {
    const fast = fastYamlDocuments(source.text);
    if (fast) {
      const reader = new YamlReader(source.path, source.text, undefined);
      const documents: ResourcePolicyDocument[] = [];
      const declarations: DeclarationsDocument[] = [];
      fast.forEach((root, index) => {
        readDocument(reader, root, fast.length > 1 ? `${source.path}#${index + 1}` : source.path, documents, declarations);
      });
      if (reader.issues.length === 0) return { documents, declarations, issues: [], precise: false };
    }
  }
  const { LineCounter, parseAllDocuments } = yamlLibrary();
  const lineCounter = new LineCounter();
  const reader = new YamlReader(source.path, source.text, lineCounter);
  const documents: ResourcePolicyDocument[] = [];
  const declarations: DeclarationsDocument[] = [];
  const yamlDocs = parseAllDocuments(source.text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(yamlDocs) ? yamlDocs : [];
  if (!Array.isArray(yamlDocs)) {
    reader.report('YAML_SYNTAX', 'not a YAML document stream', { file: source.path, line: 1, column: 1 });
  }
  const contentDocs = list.filter((d) => d.contents !== null || d.errors.length > 0);
  contentDocs.forEach((doc, index) => {
    for (const err of doc.errors) {
      // With prettyErrors off, linePos is not filled in: map the byte offset ourselves.
      const pos = err.linePos?.[0] ?? lineCounter.linePos(err.pos[0]);
      reader.report('YAML_SYNTAX', err.message.split('\n')[0]!, { file: source.path, line: pos.line, column: pos.col });
    }
    if (doc.errors.length > 0) return;
    const id = contentDocs.length > 1 ? `${source.path}#${index + 1}` : source.path;
    readDocument(reader, doc.contents as Node | null, id, documents, declarations);
  });
  if (contentDocs.length === 0) {
    reader.report('MISSING_FIELD', 'file holds no policy document', { file: source.path, line: 1, column: 1 });
  }
  return { documents, declarations, issues: reader.issues, precise: true };
}

/** A policy, or a set's declarations (`kind: Declarations`). */
function readDocument(reader: YamlReader, root: Node | null, id: string, documents: ResourcePolicyDocument[], declarations: DeclarationsDocument[]): void {
  if (kindOf(root) === DECLARATIONS_KIND) {
    const d = readDeclarations(reader, root, id, API_VERSION);
    if (d) declarations.push(d);
    return;
  }
  const parsed = readPolicy(reader, root, id);
  if (parsed) documents.push(parsed);
}

function readPolicy(reader: YamlReader, root: Node | null, id: string): ResourcePolicyDocument | undefined {
  const docPos = reader.positionOf(root);
  const map = reader.asMap(root, 'a policy document', docPos);
  if (!map) return undefined;
  const fields = reader.entries(map, POLICY_FIELDS, 'policy');

  const apiVersionNode = reader.required(fields, 'apiVersion', 'policy', docPos);
  if (apiVersionNode !== undefined) {
    const v = reader.asString(apiVersionNode, 'apiVersion', docPos);
    if (v !== undefined && v !== API_VERSION) {
      reader.report('UNSUPPORTED_API_VERSION', `apiVersion "${v}" is not supported (use "${API_VERSION}")`, reader.positionOf(apiVersionNode));
    }
  }
  const kindNode = reader.required(fields, 'kind', 'policy', docPos);
  if (kindNode !== undefined) {
    const kind = reader.asString(kindNode, 'kind', docPos);
    if (kind !== undefined && kind !== 'ResourcePolicy') {
      reader.report('UNKNOWN_KIND', `kind "${kind}" is not known (use "ResourcePolicy")`, reader.positionOf(kindNode));
    }
  }
  let resource = '';
  const resourceNode = reader.required(fields, 'resource', 'policy', docPos);
  if (resourceNode !== undefined) {
    const r = reader.asString(resourceNode, 'resource', docPos);
    if (r !== undefined) {
      if (r !== '*' && !RESOURCE_TYPE.test(r)) {
        reader.report('INVALID_VALUE', `resource "${r}" must be "*" or a type name of letters, digits and _ . : - /`, reader.positionOf(resourceNode));
      }
      resource = r;
    }
  }
  const description = optionalString(reader, fields.get('description')?.value, 'description', docPos);
  const variables = readVariables(reader, fields.get('variables')?.value, docPos);
  const derivedRoles = readDerivedRoles(reader, fields.get('derivedRoles')?.value, docPos);
  const rulesNode = reader.required(fields, 'rules', 'policy', docPos);
  const rules = rulesNode === undefined ? [] : readRules(reader, rulesNode, docPos);
  const limits = readLimits(reader, fields.get('limits')?.value, docPos);

  // Returned even when parts were invalid, so the compiler can still check the valid rules' CEL and
  // report every problem at once; any issue rejects the set as a whole.
  const doc: ResourcePolicyDocument = { id, file: reader.file, position: docPos, resource, description, variables, derivedRoles, rules };
  return limits.length > 0 ? { ...doc, limits } : doc;
}

function optionalString(reader: YamlReader, node: Node | null | undefined, where: string, at: SourcePosition): string {
  if (node === undefined || node === null) return '';
  return reader.asString(node, where, at) ?? '';
}

function readVariables(reader: YamlReader, node: Node | null | undefined, at: SourcePosition): VariableDefinition[] {
  if (node === undefined || node === null) return [];
  const map = reader.asMap(node, 'variables', at);
  if (!map) return [];
  const out: VariableDefinition[] = [];
  for (const pair of map.items) {
    const keyNode = pair.key as Node;
    const position = reader.positionOf(keyNode, at);
    const name = reader.asString(keyNode, 'variable name', at);
    if (name === undefined) continue;
    if (!IDENTIFIER.test(name)) {
      reader.report('INVALID_VALUE', `variable name "${name}" must be an identifier (letters, digits, _)`, position);
      continue;
    }
    const expression = reader.expression(pair.value as Node | null, `variables.${name}`, position);
    if (expression) out.push({ name, position, expression });
  }
  return out;
}

function readDerivedRoles(reader: YamlReader, node: Node | null | undefined, at: SourcePosition): DerivedRoleDefinition[] {
  if (node === undefined || node === null) return [];
  const items = reader.asSeq(node, 'derivedRoles', at);
  if (!items) return [];
  const out: DerivedRoleDefinition[] = [];
  const seen = new Map<string, SourcePosition>();
  items.forEach((item, i) => {
    const where = `derivedRoles[${i}]`;
    const position = reader.positionOf(item, at);
    const map = reader.asMap(item, where, position);
    if (!map) return;
    const f = reader.entries(map, DERIVED_ROLE_FIELDS, where);
    const nameNode = reader.required(f, 'name', where, position);
    const name = nameNode === undefined ? undefined : reader.asString(nameNode, `${where}.name`, position);
    if (name !== undefined) {
      if (!NAME.test(name)) reader.report('INVALID_VALUE', `${where}.name "${name}" must be letters, digits and _ . : -`, reader.positionOf(nameNode));
      const prev = seen.get(name);
      if (prev) reader.report('DUPLICATE_NAME', `derived role "${name}" is already defined at line ${prev.line}`, reader.positionOf(nameNode));
      else seen.set(name, reader.positionOf(nameNode));
    }
    const parentNode = f.get('parentRoles')?.value;
    const parentList = parentNode === undefined || parentNode === null ? [] : reader.stringList(parentNode, `${where}.parentRoles`, position) ?? [];
    const parentRoles = parentList.map((p) => p.value);
    const whenNode = reader.required(f, 'when', where, position);
    const when = whenNode === undefined ? undefined : reader.expression(whenNode, `${where}.when`, position);
    if (name !== undefined && when) out.push({ name, position: reader.positionOf(nameNode), parentRoles, parentRolePositions: parentList.map((p) => p.position), when });
  });
  return out;
}

function readRules(reader: YamlReader, node: Node | null, at: SourcePosition): RuleDefinition[] {
  const items = reader.asSeq(node, 'rules', at);
  if (!items) return [];
  const out: RuleDefinition[] = [];
  items.forEach((item, i) => {
    const where = `rules[${i}]`;
    const position = reader.positionOf(item, at);
    const map = reader.asMap(item, where, position);
    if (!map || !isMap(item)) return;
    const f = reader.entries(map, RULE_FIELDS, where);
    const before = reader.issues.length;
    const nameNode = reader.required(f, 'name', where, position);
    const name = nameNode === undefined ? undefined : reader.asString(nameNode, `${where}.name`, position);
    if (name !== undefined && !NAME.test(name)) {
      reader.report('INVALID_VALUE', `${where}.name "${name}" must be letters, digits and _ . : -`, reader.positionOf(nameNode));
    }
    const label = name ? `rule "${name}"` : where;
    const actionsNode = reader.required(f, 'actions', label, position);
    const actions = actionsNode === undefined ? [] : reader.stringList(actionsNode, `${label}: actions`, position) ?? [];
    if (actionsNode !== undefined && actions.length === 0 && reader.issues.length === before) {
      reader.report('INVALID_ACTION', `${label}: actions must not be empty`, reader.positionOf(actionsNode, position));
    }
    for (const a of actions) {
      if (!ACTION_PATTERN.test(a.value)) {
        reader.report('INVALID_ACTION', `${label}: action "${a.value}" is not a valid action or glob ("*", "name", or a prefix glob like "report:*"; "*" only at the end)`, a.position);
      }
    }
    const effectNode = reader.required(f, 'effect', label, position);
    let effect: Effect | undefined;
    if (effectNode !== undefined) {
      const e = reader.asString(effectNode, `${label}: effect`, position);
      if (e === 'allow' || e === 'deny') effect = e;
      else if (e !== undefined) reader.report('INVALID_EFFECT', `${label}: effect "${e}" must be "allow" or "deny"`, reader.positionOf(effectNode));
    }
    const rolesNode = f.get('roles')?.value;
    const roleList = rolesNode === undefined || rolesNode === null ? undefined : reader.stringList(rolesNode, `${label}: roles`, position) ?? [];
    const roles = roleList?.map((r) => r.value);
    if (roles !== undefined && roles.length === 0 && reader.issues.length === before) {
      // An empty list reads like "nobody" but would mean "anyone": refuse the ambiguity.
      reader.report('INVALID_VALUE', `${label}: roles must not be empty (omit it or use ["*"] for any subject)`, reader.positionOf(rolesNode, position));
    }
    const whenNode = f.get('when')?.value;
    const when = whenNode === undefined || whenNode === null ? undefined : reader.expression(whenNode, `${label}: when`, position);
    const description = optionalString(reader, f.get('description')?.value, `${label}: description`, position);
    if (reader.issues.length > before || name === undefined || effect === undefined) return;
    out.push({
      name,
      position: reader.positionOf(nameNode),
      description,
      actions: actions.map((a) => ({ pattern: a.value, position: a.position })),
      effect,
      roles,
      rolePositions: roleList?.map((r) => r.position),
      when,
    });
  });
  return out;
}
