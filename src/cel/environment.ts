import { Environment, type ASTNode } from '@marcbachmann/cel-js';
import { inCidr, parseCidr } from './cidr.js';
import { checkRegexPattern } from './regex.js';
import { CallerValue, ResourceValue, SubjectValue } from './values.js';

/** The CEL variables every condition may use, with their declared types (no implicit dyn). */
export const CEL_VARIABLES = {
  subject: 'verdict.Subject',
  resource: 'verdict.Resource',
  action: 'string',
  context: 'map<string, dyn>',
  now: 'google.protobuf.Timestamp',
  caller: 'verdict.Caller',
} as const;

let baseEnvironment: Environment | undefined;

/**
 * The shared, frozen base environment. Each policy clones it to add its own typed `variables`;
 * cloning freezes the parent, which is what we want: no policy can change what another sees.
 */
export function celBaseEnvironment(): Environment {
  if (baseEnvironment) return baseEnvironment;
  const env = new Environment({
    unlistedVariablesAreDyn: false,
    homogeneousAggregateLiterals: false,
    limits: { maxAstNodes: 2_000, maxDepth: 64, maxListElements: 1_000, maxMapEntries: 1_000, maxCallArguments: 16 },
  })
    .registerType('verdict.Subject', {
      ctor: SubjectValue,
      fields: { type: 'string', id: 'string', roles: 'list<string>', attributes: 'map<string, dyn>' },
    })
    .registerType('verdict.Resource', {
      ctor: ResourceValue,
      fields: { type: 'string', id: 'string', attributes: 'map<string, dyn>' },
    })
    .registerType('verdict.Caller', { ctor: CallerValue, fields: { id: 'string', kind: 'string' } })
    .registerFunction('inCidr(string, string): bool', (ip: string, cidr: string) => inCidr(ip, cidr), {
      description: 'True when the IPv4/IPv6 address ip lies in the CIDR block cidr',
    });
  for (const [name, type] of Object.entries(CEL_VARIABLES)) env.registerVariable(name, type);
  baseEnvironment = env;
  return env;
}

/** Where in an expression something is wrong: offsets into the expression text. */
export interface ExpressionIssue {
  readonly message: string;
  readonly start: number;
}

/** A walk over cel-js's AST: children are nodes, arrays of nodes, or map entries. */
function forEachNode(node: ASTNode, visit: (n: ASTNode) => void): void {
  visit(node);
  const args: unknown = node.args;
  const stack: unknown[] = Array.isArray(args) ? [...args] : [args];
  while (stack.length > 0) {
    const item = stack.pop();
    if (Array.isArray(item)) stack.push(...item);
    else if (item !== null && typeof item === 'object' && 'op' in item && 'args' in item) forEachNode(item as ASTNode, visit);
  }
}

/** Names X used as `variables.X` in an expression, with their positions. */
export function referencedVariables(ast: ASTNode): { name: string; start: number }[] {
  const found: { name: string; start: number }[] = [];
  forEachNode(ast, (n) => {
    if (n.op === '.' || n.op === '.?') {
      const [target, field] = n.args as [ASTNode, string];
      if (target.op === 'id' && target.args === 'variables') found.push({ name: field, start: n.range.start });
    }
  });
  return found;
}

/**
 * Load-time checks the type checker cannot do: regex patterns must be literals in RE2 syntax (they
 * are compiled once, at load), and literal CIDRs must parse. Errors here would otherwise surface
 * only on the hot path.
 */
export function lintExpression(ast: ASTNode): ExpressionIssue[] {
  const issues: ExpressionIssue[] = [];
  forEachNode(ast, (n) => {
    let fn: string | undefined;
    let callArgs: ASTNode[] = [];
    if (n.op === 'rcall') {
      const [name, receiver, args] = n.args as [string, ASTNode, ASTNode[]];
      fn = name;
      callArgs = [receiver, ...args];
    } else if (n.op === 'call') {
      const [name, args] = n.args as [string, ASTNode[]];
      fn = name;
      callArgs = args;
    }
    if (fn === 'matches') {
      const pattern = callArgs[1];
      if (!pattern || pattern.op !== 'value' || typeof pattern.args !== 'string') {
        issues.push({ message: 'matches() needs a string literal pattern (patterns are compiled and checked at load)', start: (pattern ?? n).range.start });
      } else {
        const problem = checkRegexPattern(pattern.args);
        if (problem) issues.push({ message: problem, start: pattern.range.start });
      }
    } else if (fn === 'inCidr') {
      const cidr = callArgs[1];
      if (cidr && cidr.op === 'value' && typeof cidr.args === 'string') {
        try {
          parseCidr(cidr.args);
        } catch (err) {
          issues.push({ message: (err as Error).message, start: cidr.range.start });
        }
      }
    }
  });
  return issues;
}
