/** `verdict serve --http 127.0.0.1:0` as a child process, with the HTTP port from its "verdict serving" line. */
import { isServingLine, startServer, type StartServerOptions, type VerdictProcess } from '../../support/server-process.js';

export interface AuthzenServer {
  readonly proc: VerdictProcess;
  /** The gRPC port. */
  readonly port: number;
  /** The HTTP (AuthZEN) port. */
  readonly httpPort: number;
}

export async function startAuthzen(opts: StartServerOptions & { http?: string }): Promise<AuthzenServer> {
  const proc = await startServer({ ...opts, args: ['--http', opts.http ?? '127.0.0.1:0', ...(opts.args ?? [])] });
  const line = proc.findLog(isServingLine);
  const http = String(line?.http ?? '');
  const httpPort = Number(http.slice(http.lastIndexOf(':') + 1));
  if (!Number.isInteger(httpPort) || httpPort <= 0) throw new Error(`no http address in the "verdict serving" line: ${JSON.stringify(line)}`);
  return { proc, port: proc.port, httpPort };
}

/**
 * The AuthZEN certification scenario's fixture (openid/authzen certification/authorization-api-1_0-scenario.md,
 * "Required Fixture") as a Verdict policy: alice and bob read and write records, archived records only
 * by admins (subject property role), deletes only soft (action property soft, seen as context.action.soft).
 */
export const CERTIFICATION_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: record
rules:
  - name: anyone-reads
    actions: [read]
    effect: allow
  - name: alice-writes-unarchived
    actions: [write]
    effect: allow
    when: subject.id == "alice" && !(has(resource.attributes.status) && resource.attributes.status == "archived")
  - name: admins-write
    actions: [write]
    effect: allow
    when: has(subject.attributes.role) && subject.attributes.role == "admin"
  - name: soft-deletes
    actions: [delete]
    effect: allow
    when: has(context.action) && has(context.action.soft) && context.action.soft == true
`;

/** Documents guarded by roles (from subject properties), classification, and the mTLS caller. */
export const DOCUMENT_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: editors-edit
    actions: [read, edit]
    effect: allow
    roles: [editor]
  - name: viewers-read
    actions: [read]
    effect: allow
    roles: [viewer]
  - name: deny-secret
    actions: ["*"]
    effect: deny
    when: has(resource.attributes.secret) && resource.attributes.secret == true
  - name: gateway-inspects
    actions: [inspect]
    effect: allow
    when: caller.kind == "spiffe" && caller.id == "spiffe://example.org/ns/edge/sa/envoy"
  - name: broken-condition
    actions: [probe]
    effect: allow
    when: resource.attributes.missing == 1
`;

/**
 * A policy for the AuthZEN specification's own examples (authorization-api-1_0, "Access Evaluation
 * API" and "Access Evaluations API"): alice@example.com reads documents and accounts; reading an
 * account needs the action property method GET; nobody edits.
 */
export const SPEC_EXAMPLES_POLICY = `apiVersion: verdict/v1
kind: ResourcePolicy
resource: account
rules:
  - name: alice-reads-with-get
    actions: [can_read]
    effect: allow
    when: subject.id == "alice@example.com" && has(context.action.method) && context.action.method == "GET"
---
apiVersion: verdict/v1
kind: ResourcePolicy
resource: document
rules:
  - name: alice-reads-documents
    actions: [can_read, read]
    effect: allow
    when: subject.id == "alice@example.com"
`;
