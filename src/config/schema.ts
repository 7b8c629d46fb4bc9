import type { UsageConfig } from './usage.js';
import type { CostLimits, RequestLimits } from '../engine/limits.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServiceLimits extends RequestLimits, CostLimits {
  /** Largest request message accepted, in bytes; bigger ones get INVALID_ARGUMENT. */
  readonly maxMessageBytes: number;
  /** Most items in one CheckBatch. */
  readonly maxBatchItems: number;
}

export interface EventsConfig {
  /** Publish every decision to NATS JetStream. */
  readonly enabled: boolean;
  readonly natsUrl: string;
  /** Subject prefix: events go to `<prefix>.<resource type>.<allow|deny>`. */
  readonly subjectPrefix: string;
  readonly stream: string;
  /** Max age of events in the stream, in seconds (0 = forever). */
  readonly maxAgeSeconds: number;
  /** JetStream duplicate window in seconds: must outlast the longest outage plus retry time. */
  readonly duplicateWindowSeconds: number;
  /** Bounded in-memory queue; beyond it events go to the spool. */
  readonly queueSize: number;
  /** Directory of the append-only spool (write-ahead log) of events not yet confirmed by JetStream. */
  readonly spoolDir: string;
  /** Most unconfirmed bytes the spool may hold; beyond it events are dropped (or denied when required). */
  readonly spoolMaxBytes: number;
  /** Chain, spool and publish on a separate thread, off the thread that answers calls. */
  readonly publisherThread: boolean;
  /** Events are spooled and sent in groups this often (0 = every event-loop turn). */
  readonly flushIntervalMs: number;
  /** How often a chain checkpoint (one JetStream ack covering every event before it) is sent. */
  readonly checkpointIntervalMs: number;
  /** At most this many records are sent after a checkpoint before the next one is sent (and awaited before more follow it). */
  readonly checkpointMaxEvents: number;
  /** A checkpoint not acknowledged within this time marks NATS unavailable; events are replayed. */
  readonly ackTimeoutMs: number;
  /** Answer a check only once its event is acked by JetStream or written to the spool. */
  readonly required: boolean;
  /** Attribute keys to include in events: "none", "all", or a list of dotted paths. */
  readonly includeAttributes: 'none' | 'all' | readonly string[];
  /** Attribute keys (dotted paths like "subject.attributes.email") replaced by "***" in events. */
  readonly maskAttributes: readonly string[];
  /** Identifies this service instance in events and its hash chain; default: hostname-pid. */
  readonly instanceId: string;
  /** Byte budget (UTF-8) of each caller- or policy-supplied string of an event; longer ones are cut (events.md). */
  readonly maxFieldBytes: number;
  /** Byte budget of the roles list and of the errors list of an event, each as JSON. */
  readonly maxListBytes: number;
  /** Byte budget of a whole event; the smaller of this and what NATS and the stream accept is used. */
  readonly maxEventBytes: number;
  /** Events handed to the publisher thread but not yet taken by it; beyond, new events are dropped (denied when required). */
  readonly handoffMaxEvents: number;
  /** Same bound in bytes (string length of the handed-over fields). */
  readonly handoffMaxBytes: number;
  /** Create the stream if missing and restore drifted settings (true), or only check and report (false). */
  readonly manageStream: boolean;
  /** How often the stream's configuration is checked for drift (0 = only when connecting). */
  readonly streamCheckIntervalMs: number;
  /** Report the whole service NOT_SERVING while the decision trail is unhealthy (drift, spool failing, thread down). */
  readonly healthRequiresTrail: boolean;
  /** Stream replicas (num_replicas): 3 on a NATS cluster for R3. */
  readonly replicas: number;
  /** NATS credentials and TLS (files; '' = unset). At most one credential kind. */
  readonly natsUser: string;
  readonly natsPasswordFile: string;
  readonly natsTokenFile: string;
  readonly natsNkeySeedFile: string;
  readonly natsCredsFile: string;
  readonly natsCaFile: string;
  readonly natsCertFile: string;
  readonly natsKeyFile: string;
  /** Ed25519 private key (PKCS#8 PEM, `verdict keys generate`) that signs checkpoints; "" = unsigned. */
  readonly signingKeyFile: string;
  /** NATS KV bucket holding each instance's latest signed chain head; "" = not recorded. */
  readonly headsBucket: string;
  /** The head is written at most this often (and at once for a chain's first and final checkpoint). */
  readonly headsIntervalMs: number;
  /** JetStream Object Store bucket where the text of every revision that goes live is kept (src/evidence); "" = not stored. */
  readonly revisionsBucket: string;
  /** How long a change waits for its text to be stored before it goes live anyway (the failure is recorded). */
  readonly revisionsTimeoutMs: number;
}

export interface VerdictConfig {
  /** Processes serving the port (Node cluster); default: one per core. */
  readonly workers: number;
  /**
   * V8's --max-semi-space-size for worker processes (workers > 1), in MB; 0 leaves V8's default
   * (16 MB). A worker's young generation is three semi-spaces; under load V8 grows them to the
   * maximum, and a smaller one keeps a worker's memory down for a few percent more CPU per check.
   */
  readonly workerSemiSpaceMB: number;
  /**
   * How far V8's old generation may grow past what a full collection left live before the next
   * one, in percent (V8's --heap-growing-percent), in every serving process; 0 leaves V8's own
   * choice (up to 4x the live size on a machine with memory to spare).
   */
  readonly heapGrowthPercent: number;
  /** host:port for the gRPC server. */
  readonly listen: string;
  readonly policies: string;
  readonly logLevel: LogLevel;
  /** Log one line per decision at info level (off by default: the decision stream is the audit trail). */
  readonly logDecisions: boolean;
  readonly limits: ServiceLimits;
  readonly reload: { readonly watch: boolean; readonly debounceMs: number; readonly settleMs: number; readonly pollIntervalMs: number };
  readonly shutdown: { readonly graceMs: number };
  readonly transport: TransportConfig;
  readonly events: EventsConfig;
  /** Optional sections (src/config/auth.ts): absent or empty = off. */
  readonly tls?: TlsConfig | undefined;
  readonly tokens?: TokensConfig | undefined;
  readonly gateway?: GatewayConfig | undefined;
  /** OpenID AuthZEN over HTTP (src/http/); absent = not served. */
  readonly http?: HttpConfig | undefined;
  /** The admin HTTP listener (/metrics, /healthz, /readyz); absent = off. */
  readonly admin?: AdminConfig | undefined;
  /** OpenTelemetry tracing, from the standard OTEL_* environment variables; absent = off. */
  readonly tracing?: TracingSettings | undefined;
  /** Policies from a bundle label in NATS instead of the directory (src/bundles/); url "" = the directory. */
  readonly policySource: PolicySourceConfig;
  /** Heartbeats of this replica in a NATS KV bucket, for `verdict fleet` (src/bundles/fleet.ts). */
  readonly fleet: FleetConfig;
  /** Counters of the policy's rate limits and quotas (src/config/usage.ts). */
  readonly usage: UsageConfig;
}

/** The admin HTTP listener (src/observability/admin-server.ts). */
export interface AdminConfig {
  /** HOST:PORT; port 0 picks a free port (logged). */
  readonly listen: string;
}

/** What OTEL_* asked for (checked at start); the SDK reads the rest of the variables itself. */
export interface TracingSettings {
  readonly exporters: readonly ('otlp' | 'console')[];
  readonly protocol: 'http/protobuf' | 'http/json';
  readonly sampler: string;
}

/** A policy bundle label in NATS as the policy source (src/bundles/nats-source.ts). */
export interface PolicySourceConfig {
  /** nats://HOST:PORT[,HOST:PORT…]/LABEL (or tls://); "" = serve the `policies` directory. */
  readonly url: string;
  /** JetStream Object Store bucket holding the bundles, one object per revision. */
  readonly bucket: string;
  /** KV bucket with one key per label naming its current revision (with history). */
  readonly labelsBucket: string;
  /** Where the last good bundle is kept, so a start without NATS serves it. */
  readonly cacheDir: string;
  /** NATS connect and request timeout; at start, how long NATS gets before the cached bundle is used. */
  readonly timeoutMs: number;
  /** The label is also read this often, in case a watch update was missed; 0 = only the watch. */
  readonly pollIntervalMs: number;
  /** Largest bundle accepted (the whole object, bytes). */
  readonly maxBundleBytes: number;
}

/** The fleet view: each replica reports itself to a KV bucket whose entries expire. */
export interface FleetConfig {
  /** KV bucket of replica heartbeats; "" = do not report. */
  readonly bucket: string;
  /** A heartbeat this often; the bucket keeps an entry 3 × as long. */
  readonly heartbeatMs: number;
  /** NATS to report to; "" = the policy source's NATS when it is a bundle label, else no report. */
  readonly natsUrl: string;
}

/** What one client can make the gRPC server hold (src/grpc/transport-guard.ts, grpc-js options). Per process. */
export interface TransportConfig {
  /** Open connections; more are closed at accept. */
  readonly maxConnections: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls in flight on one connection. */
  readonly maxConcurrentStreams: number;
  /** A request must arrive whole (END_STREAM) this long after its stream opened. */
  readonly requestTimeoutMs: number;
  /** Requests not yet received whole, across all connections; beyond, the oldest is cut off. */
  readonly maxPendingRequests: number;
  /** Bytes of those requests' messages held; beyond, the oldest are cut off. */
  readonly maxPendingBytes: number;
  /** A connection without calls for this long is closed (GOAWAY); 0 = never. */
  readonly idleTimeoutMs: number;
  /** The server pings each connection this often and drops it when no answer comes within keepaliveTimeoutMs; 0 = no pings. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** A connection is asked to go away (GOAWAY) after this long, ±10%; 0 = never. */
  readonly maxConnectionAgeMs: number;
  /** ... and closed this long after that, whatever is in flight; 0 = wait for the calls. */
  readonly maxConnectionAgeGraceMs: number;
  /** What Node's HTTP/2 layer may hold for one connection (frames for a client that does not read, header blocks), in MB. */
  readonly maxSessionMemoryMb: number;
}

/** Transport security of the gRPC server (src/auth/tls.ts); absent = plaintext. */
export interface TlsConfig {
  /** PEM files of the server certificate (chain) and its key; reloaded when they change. */
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM bundle of CAs that sign client certificates; absent = clients are not asked for one. */
  readonly clientCaFile: string | undefined;
  /** Refuse connections without a valid client certificate (default true when clientCaFile is set). */
  readonly requireClientCert: boolean;
  /** How often the files are checked for changes. */
  readonly reloadIntervalMs: number;
  /** Callers allowed to ask, by kind: spiffe://td/path, spiffe://td/prefix/*, cn:<CN>, uri:<URI> (src/auth/callers.ts); empty = any. */
  readonly allowedCallers: readonly string[];
}

/** Where an issuer's verification keys come from. */
export type KeySource =
  | { readonly kind: 'jwks-url'; readonly url: string; readonly cacheMaxAgeMs: number; readonly cooldownMs: number; readonly timeoutMs: number }
  | { readonly kind: 'jwks-file'; readonly file: string }
  | { readonly kind: 'secret-file'; readonly file: string };

/** One trusted token issuer (src/auth/tokens.ts). */
export interface IssuerConfig {
  /** Exact `iss` value. */
  readonly issuer: string;
  /** Accepted `aud` values: the token must name at least one. */
  readonly audiences: readonly string[];
  readonly keys: KeySource;
  /** Accepted `alg` values; asymmetric only unless HS* is configured with a secret file. */
  readonly algorithms: readonly string[];
  readonly clockSkewSeconds: number;
  /** Claim paths (a top-level claim name, or a dotted path) mapped to the subject. */
  readonly claims: {
    readonly subject: string;
    readonly roles: string | undefined;
    readonly attributes: Readonly<Record<string, string>>;
  };
  /** subject.type of verified subjects. */
  readonly subjectType: string;
}

export interface TokensConfig {
  readonly issuers: readonly IssuerConfig[];
}

/** Envoy ext_authz (src/gateway/): served when a routes file is configured. */
export interface GatewayConfig {
  readonly routesFile: string | undefined;
}

/** The AuthZEN HTTP API (src/http/): served on its own port when `listen` is set. */
export interface HttpConfig {
  /** HOST:PORT of the HTTP listener (port 0 = any free port). */
  readonly listen: string;
  /**
   * The base URL clients use (e.g. https://pdp.example.com), for the metadata document; undefined =
   * taken from each request's Host header and the scheme served.
   */
  readonly publicBaseUrl: string | undefined;
  /** The subject property holding the subject's roles (a list of strings); undefined = roles are never taken from properties. */
  readonly rolesProperty: string | undefined;
  /** Complete request headers must arrive within this time (HTTP/1.1). */
  readonly headersTimeoutMs: number;
  /** The whole request (headers and body) must arrive within this time. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection (HTTP/1.1) or session (HTTP/2) is closed after this time. */
  readonly idleTimeoutMs: number;
  /** Open connections per process; beyond, new connections are closed at once. */
  readonly maxConnections: number;
  /** Concurrent streams per HTTP/2 connection (served with TLS only). */
  readonly maxConcurrentStreams: number;
  /** Authentication of the calling PEP with an `Authorization: Bearer` token; both empty = none. */
  readonly auth: HttpAuthConfig;
}

export interface HttpAuthConfig {
  /** A file of shared secrets, one per line; a bearer token equal to one of them is accepted. */
  readonly bearerTokenFile: string | undefined;
  /** Issuers (from tokens.issuers) whose JWTs authenticate PEPs. */
  readonly jwtIssuers: readonly string[];
}
