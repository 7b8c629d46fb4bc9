import type { CompiledPolicySet } from '../engine/model.js';
import { compilePolicySet, type CompileOptions } from './compile.js';
import { readPolicySources } from './source.js';

export { compilePolicySet, withDigest, WILDCARD_RESOURCE, type CompileOptions } from './compile.js';
export { PolicyCompiler, type CompiledCandidate } from './compiler.js';
export { policyRevision, sha256Hex, comparePolicyPaths } from './revision.js';
export { PolicyLoadError, formatIssue, type PolicyIssue, type PolicyIssueCode } from './issues.js';
export { readPolicySources, listFiles, isPolicyFile, isTestSuiteFile } from './source.js';
export type { PolicySourceFile } from './document.js';

/** Reads and compiles the policy directory; throws PolicyLoadError listing every problem. */
export async function loadPolicyDirectory(dir: string, options: CompileOptions = {}): Promise<CompiledPolicySet> {
  return compilePolicySet(await readPolicySources(dir), options);
}
