/** Entry point of the policy validation process (see policy-validation.ts): one set in, one answer out. */
import { compilePolicySet, PolicyLoadError, type CompileOptions, type PolicySourceFile } from '../policy/index.js';
import type { ValidationAnswer } from './policy-validation.js';

process.once('message', (msg: { sources: PolicySourceFile[]; options?: CompileOptions }) => {
  let answer: ValidationAnswer;
  try {
    const set = compilePolicySet(msg.sources, msg.options);
    answer = { ok: true, revision: set.revision, policies: set.policies, resourceTypes: set.resourceTypes, ruleCount: set.ruleCount };
  } catch (err) {
    answer = err instanceof PolicyLoadError ? { ok: false, message: err.message, issues: err.issues } : { ok: false, message: (err as Error).message };
  }
  process.send!(answer, () => process.disconnect());
});
