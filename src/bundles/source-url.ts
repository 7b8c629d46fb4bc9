/**
 * The bundle policy source's address: `nats://HOST:PORT[,HOST:PORT…]/LABEL` (or `tls://`). The
 * servers go to the NATS client, the label names the key in the labels bucket.
 */

export const DEFAULT_LABEL = 'default';
export const LABEL_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface BundleSourceUrl {
  /** Server URLs for the NATS client, each with the scheme. */
  readonly servers: readonly string[];
  readonly label: string;
  /** The address as given (it carries no credentials): GetPolicySet `source`, logs. */
  readonly display: string;
}

/** A label's problem, or undefined when it can name a KV key. */
export function labelProblem(label: string): string | undefined {
  return LABEL_PATTERN.test(label) ? undefined : `label "${label.slice(0, 80)}" must be 1 to 64 letters, digits, _ and -`;
}

/** Parses a policy source URL; throws with a message saying what to write instead. */
export function parseBundleSourceUrl(url: string): BundleSourceUrl {
  const m = /^(nats|tls):\/\/([^/\s]+)(?:\/([^/\s]*))?$/.exec(url);
  if (!m) throw new Error(`"${url.slice(0, 200)}" must look like nats://HOST:PORT/LABEL (or tls://HOST:PORT/LABEL; several servers as HOST:PORT,HOST:PORT)`);
  const [, scheme, hosts, label = ''] = m;
  if (hosts!.includes('@')) throw new Error('credentials in the URL are not accepted (they would show in logs and GetPolicySet); give them in events.natsUser and events.natsPasswordFile (or another events.nats* credential), which the policy source shares with the decision stream');
  const servers = hosts!.split(',').map((h) => h.trim());
  for (const h of servers) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(h)) throw new Error(`"${h.slice(0, 100)}" is not HOST or HOST:PORT`);
  }
  const name = label === '' ? DEFAULT_LABEL : label;
  const problem = labelProblem(name);
  if (problem) throw new Error(problem);
  return { servers: servers.map((h) => `${scheme}://${h}`), label: name, display: `${scheme}://${hosts}/${name}` };
}
