/**
 * Why `verdict serve` could not start, as one line for the final fatal log line
 * (`verdict failed to start: 127.0.0.1:50051 is already in use`) plus a stable code, from the
 * errors the start path throws (grpc-js bind errors, the spool, policies, TLS and token files).
 */
import { formatIssue } from '../policy/index.js';
import type { Logger } from './logger.js';
import type { PolicyLoadFailure as LoadFailure } from '../service/live-policy.js';

export type StartFailureCode =
  | 'ADDRESS_IN_USE'
  | 'ADDRESS_NOT_PERMITTED'
  | 'ADDRESS_NOT_AVAILABLE'
  | 'ADDRESS_UNRESOLVED'
  | 'POLICIES_REJECTED'
  | 'SPOOL_UNUSABLE'
  | 'WORKER_EXITED'
  | 'START_FAILED';

export interface StartFailure {
  readonly code: StartFailureCode;
  /** One line naming the cause. */
  readonly cause: string;
}

/** A policy set that did not load: the directory, the number of errors and the first one. */
export function policyFailure(dir: string, failure: LoadFailure): StartFailure {
  const [first] = failure.issues;
  if (!first) return { code: 'POLICIES_REJECTED', cause: `policy set ${dir} rejected: ${firstLine(failure.message)}` };
  const n = failure.issues.length;
  const more = n > 1 ? ` (${n} errors, all logged above; the first:)` : ':';
  return { code: 'POLICIES_REJECTED', cause: `policy set ${dir} rejected${more} ${firstLine(formatIssue(first))}` };
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

/** Describes an error thrown while starting to serve on `listen`. */
export function describeStartFailure(err: unknown, listen: string): StartFailure {
  // An error that knows what to report (the admin listener's, which is not on `listen`).
  if (err instanceof Error && 'startFailure' in err) return (err as Error & { startFailure: StartFailure }).startFailure;
  const message = err instanceof Error ? err.message : String(err);
  // The AuthZEN HTTP listener's bind errors name its own address (src/http/server.ts).
  const http = /^http\.listen (\S+): /.exec(message);
  if (http) listen = http[1]!;
  const flag = http ? '--http' : '--listen';
  // grpc-js: "No address added out of total 1 resolved errors: [listen EADDRINUSE: address already in use 127.0.0.1:50051]"
  if (/\bEADDRINUSE\b/.test(message)) return { code: 'ADDRESS_IN_USE', cause: `${listen} is already in use (another process is listening on it); choose another ${flag} address or stop that process` };
  if (/\bEACCES\b/.test(message)) return { code: 'ADDRESS_NOT_PERMITTED', cause: `${listen}: permission denied to listen there (ports below 1024 need privileges)` };
  if (/\bEADDRNOTAVAIL\b/.test(message)) return { code: 'ADDRESS_NOT_AVAILABLE', cause: `${listen}: the host is not an address of this machine` };
  if (/Name resolution failed/i.test(message)) return { code: 'ADDRESS_UNRESOLVED', cause: `${listen}: the host name does not resolve` };
  if (message.startsWith('events.spoolDir ')) return { code: 'SPOOL_UNUSABLE', cause: firstLine(message) };
  return { code: 'START_FAILED', cause: firstLine(message.replace(/^cannot start: /, '')) };
}

/** The last line of a failed start: `verdict failed to start: <cause>`, with `code` and the raw `err`. */
export function logStartFailure(logger: Logger, failure: StartFailure, err: string, extra: Record<string, unknown> = {}): void {
  logger.fatal({ ...extra, code: failure.code, err }, `verdict failed to start: ${failure.cause}`);
}
