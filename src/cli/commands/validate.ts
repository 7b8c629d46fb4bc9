import { loadPolicyDirectory, PolicyLoadError, formatIssue } from '../../policy/index.js';
import { parseArgs } from '../args.js';
import type { CliOutput } from '../output.js';

export const validateUsage = 'verdict validate [DIR]        check every policy file under DIR (default: policies)';

export async function validateCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, [], []);
  const dir = args.positionals[0] ?? 'policies';
  try {
    const set = await loadPolicyDirectory(dir);
    io.out(`OK ${dir}: ${set.policies.length} policies, ${set.ruleCount} rules, ${set.resourceTypes.length} resource types, revision ${set.revision}`);
    return 0;
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const issue of err.issues) io.err(formatIssue(issue));
    io.err(`${dir}: ${err.issues.length} error${err.issues.length === 1 ? '' : 's'}; policy set rejected`);
    return 1;
  }
}
