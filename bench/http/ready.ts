/** Readiness of an AuthZEN server for the benchmark: it answers an evaluation from the workload sensibly. */
import { Http1Transport } from './http1-transport.js';
import { authzenProtocol } from './authzen-protocol.js';
import type { WorkloadName } from '../workloads.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls POST /access/v1/evaluation until it answers 200 with a boolean decision; rejects after `timeoutMs`. */
export async function waitUntilHttpAnswers(address: string, workload: WorkloadName, timeoutMs: number): Promise<void> {
  const method = authzenProtocol.method('Check');
  const body = method.encode(authzenProtocol.messages(workload, 'Check')[0]);
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const transport = new Http1Transport(address, method.path, [body], 1);
    try {
      await transport.ready(1_000);
      const problem = authzenProtocol.problemWith('Check', method.decode(await transport.callForResponse(0)));
      if (!problem) return;
      last = problem;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      transport.close();
    }
    await sleep(100);
  }
  throw new Error(`${address} did not answer an AuthZEN evaluation within ${timeoutMs} ms (last: ${last})`);
}
