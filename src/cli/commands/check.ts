import { readFile } from 'node:fs/promises';
import { decide } from '../../engine/evaluate.js';
import { parseCheckRequest, InvalidRequestError } from '../../engine/input.js';
import { loadPolicyDirectory, PolicyLoadError, formatIssue } from '../../policy/index.js';
import { parseArgs, stringFlag, UsageError } from '../args.js';
import type { CliOutput } from '../output.js';

export const checkUsage =
  'verdict check --policies DIR --request FILE|- [--explain] [--now RFC3339]   decide one request locally, print the decision as JSON';

async function readAll(source: string): Promise<string> {
  if (source !== '-') return readFile(source, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function checkCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['explain'], ['policies', 'request', 'now', 'server']);
  const requestSource = stringFlag(args, 'request');
  if (!requestSource) throw new UsageError('--request FILE|- is required');
  let raw: unknown;
  try {
    raw = JSON.parse(await readAll(requestSource));
  } catch (err) {
    io.err(`cannot read request ${requestSource}: ${(err as Error).message}`);
    return 2;
  }
  const nowText = stringFlag(args, 'now');
  const now = nowText ? new Date(nowText) : new Date();
  if (Number.isNaN(now.getTime())) throw new UsageError(`--now ${nowText} is not an RFC 3339 timestamp`);
  const dir = stringFlag(args, 'policies') ?? 'policies';
  let set;
  try {
    set = await loadPolicyDirectory(dir);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const issue of err.issues) io.err(formatIssue(issue));
    return 1;
  }
  try {
    const request = parseCheckRequest(raw);
    const decision = decide(set, request, { now, explain: args.flags.has('explain') });
    io.out(JSON.stringify(decision, null, 2));
    return decision.effect === 'ALLOW' ? 0 : 3;
  } catch (err) {
    if (err instanceof InvalidRequestError) {
      io.err(`invalid request: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
