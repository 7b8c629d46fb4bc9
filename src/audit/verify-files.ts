import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ChainVerifier, type Finding } from './verifier.js';

export interface VerifyReport {
  readonly files: number;
  readonly lines: number;
  readonly events: number;
  readonly checkpoints: number;
  readonly findings: readonly Finding[];
  readonly chains: readonly { chain: string; events: number; closed: boolean }[];
  readonly anchored: readonly { chain: string; seq: number; where: string }[];
}

/**
 * Re-checks stored audit files offline, in the order given (name them in order; the consumer's
 * file names sort by time). Every line must parse; every chain must verify from seq 1 unless
 * `allowPartialStart`.
 */
export async function verifyFiles(files: readonly string[], options: { partial?: boolean; allowPartialStart?: boolean } = {}): Promise<VerifyReport> {
  const verifier = new ChainVerifier(options.partial ?? false, options.allowPartialStart ?? false);
  let lines = 0;
  for (const file of files) {
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      if (line.trim() === '') continue;
      lines++;
      const where = `${file}:${lineNo}`;
      let parsed: { data?: unknown };
      try {
        parsed = JSON.parse(line) as { data?: unknown };
      } catch {
        verifier.findings.push({ kind: 'malformed', chain: '', seq: 0, where, message: 'line is not valid JSON' });
        continue;
      }
      verifier.accept(parsed.data ?? parsed, where);
    }
  }
  return {
    files: files.length,
    lines,
    events: verifier.events,
    checkpoints: verifier.checkpoints,
    findings: verifier.findings,
    chains: verifier.chainSummaries(),
    anchored: verifier.anchored,
  };
}
