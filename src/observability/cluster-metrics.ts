/**
 * One scrape for a cluster: the primary asks every worker (over the cluster IPC channel) for its
 * metric families and readiness, waits at most `timeoutMs`, and merges what came back with its own.
 *
 * prom-client's AggregatorRegistry.clusterMetrics() is not used for the asking: it sends to every
 * connected worker, including one just forked that has not loaded its metrics yet, and fails the
 * whole scrape after a fixed 5 s when any worker is silent. Here a worker is asked only once it
 * said it answers (after a restart too), a silent worker is reported as verdict_worker_up 0 and the
 * others' series still come, and the merge is prom-client's AggregatorRegistry.aggregate.
 */
import cluster, { type Worker } from 'node:cluster';
import type { MetricFamilyJson } from './metrics.js';

const HELLO = 'verdict:metrics-hello';
const REQUEST = 'verdict:metrics-request';
const ANSWER = 'verdict:metrics-answer';

type Hello = { type: typeof HELLO; worker: number };
type Request = { type: typeof REQUEST; id: number; metrics: boolean };
type Answer = { type: typeof ANSWER; id: number; worker: number; ready: boolean; families?: MetricFamilyJson[]; error?: string };

export interface WorkerAnswer {
  readonly worker: number;
  readonly ready: boolean;
  readonly families: MetricFamilyJson[];
}

/** In a worker: answers the primary's requests with this process's families and readiness. */
export function answerPrimary(worker: number, families: () => Promise<MetricFamilyJson[]>, ready: () => boolean): void {
  process.on('message', (msg: Request) => {
    if (msg?.type !== REQUEST) return;
    const reply = (a: Omit<Answer, 'type' | 'id' | 'worker' | 'ready'>) => {
      if (process.connected) process.send?.({ type: ANSWER, id: msg.id, worker, ready: ready(), ...a } satisfies Answer);
    };
    if (!msg.metrics) return reply({});
    families().then(
      (f) => reply({ families: f }),
      (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
  process.send?.({ type: HELLO, worker } satisfies Hello);
}

/** In the primary: the workers that answer, by index. */
export class ClusterMetrics {
  private readonly workers = new Map<number, Worker>();
  private readonly pending = new Map<number, (a: Answer) => void>();
  private nextId = 1;

  constructor(
    readonly configuredWorkers: number,
    private readonly timeoutMs: number,
  ) {
    cluster.on('message', (worker: Worker, msg: Hello | Answer) => {
      if (msg?.type === HELLO) this.workers.set(msg.worker, worker);
      else if (msg?.type === ANSWER) this.pending.get(msg.id)?.(msg);
    });
    cluster.on('exit', (worker: Worker) => {
      for (const [i, w] of this.workers) if (w === worker) this.workers.delete(i);
    });
  }

  /** Asks every answering worker; resolves with those that answered within the timeout. */
  ask(metrics: boolean): Promise<WorkerAnswer[]> {
    const targets = [...this.workers].filter(([, w]) => w.isConnected());
    if (targets.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const answers: WorkerAnswer[] = [];
      const ids: number[] = [];
      let open = targets.length;
      const finish = () => {
        clearTimeout(timer);
        for (const id of ids) this.pending.delete(id);
        resolve(answers.sort((a, b) => a.worker - b.worker));
      };
      const timer = setTimeout(finish, this.timeoutMs);
      for (const [, w] of targets) {
        const id = this.nextId++;
        ids.push(id);
        this.pending.set(id, (a) => {
          this.pending.delete(id);
          if (!a.error) answers.push({ worker: a.worker, ready: a.ready, families: a.families ?? [] });
          if (--open === 0) finish();
        });
        try {
          w.send({ type: REQUEST, id, metrics } satisfies Request);
        } catch {
          this.pending.delete(id);
          if (--open === 0) finish();
        }
      }
    });
  }
}
