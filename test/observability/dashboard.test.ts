/**
 * examples/grafana/verdict-dashboard.json: well-formed Grafana JSON with the expected panels, every
 * query valid PromQL (Prometheus' own grammar, @prometheus-io/lezer-promql, after Grafana's variables
 * are substituted), and every metric it reads one that Verdict exports.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { expect } from 'chai';
import { VerdictMetrics } from '../../src/observability/metrics.js';
import { emptyStats } from '../../src/events/publisher-stats.js';
import { REPO_ROOT } from '../support/server-process.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
}

const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, 'examples/grafana/verdict-dashboard.json'), 'utf8')) as {
  title: string;
  uid: string;
  schemaVersion: number;
  __inputs: { name: string; type: string; pluginId: string }[];
  templating: { list: { name: string }[] };
  panels: Panel[];
};

/** Every metric family Verdict can export, by name (histograms also as _bucket/_sum/_count). */
async function exportedNames(): Promise<Set<string>> {
  const m = new VerdictMetrics(0);
  const policies = { current: () => undefined, lastFailure: () => undefined };
  m.registerServing(policies, { stats: { ...emptyStats(), connected: true } });
  m.registerOwner(policies);
  const names = new Set<string>(['verdict_worker_up']); // the cluster primary's own (observability.ts)
  for (const f of await m.json()) {
    names.add(f.name);
    if (String(f.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${f.name}${s}`);
  }
  return names;
}

function grafanaToPromQL(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
}

describe('observability: the Grafana dashboard (examples/grafana)', () => {
  const graphs = dashboard.panels.filter((p) => p.type !== 'row');

  it('is a Grafana dashboard with unique panel ids, laid out on the 24-column grid, on one Prometheus input', () => {
    expect(dashboard).to.include({ title: 'Verdict', uid: 'verdict-pdp' });
    expect(dashboard.schemaVersion).to.be.at.least(36);
    expect(dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId])).to.deep.equal([['DS_PROMETHEUS', 'datasource', 'prometheus']]);
    expect(dashboard.templating.list.map((v) => v.name)).to.deep.equal(['instance']);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).to.be.at.most(24);
      expect(p.gridPos.h, p.title).to.be.greaterThan(0);
    }
    for (const p of graphs) {
      expect(p.datasource?.uid, p.title).to.equal('${DS_PROMETHEUS}');
      expect(p.targets, p.title).to.not.be.empty;
      for (const t of p.targets!) expect(t.datasource?.uid ?? '${DS_PROMETHEUS}', p.title).to.equal('${DS_PROMETHEUS}');
    }
  });

  it('has the panels an operator looks at first', () => {
    const titles = graphs.map((p) => p.title);
    for (const t of ['Decisions per second by effect', 'Decisions per second by reason', 'Call latency (whole call)', 'Evaluation time per decision', 'Policy reloads by result', 'Publisher backlog (unconfirmed spool bytes)', 'Refused subject tokens by problem']) {
      expect(titles).to.include(t);
    }
    const latency = graphs.find((p) => p.title === 'Call latency (whole call)')!;
    expect(latency.targets!.map((t) => t.expr.match(/histogram_quantile\(([\d.]+)/)?.[1])).to.deep.equal(['0.5', '0.9', '0.99']);
  });

  it('queries in valid PromQL only metrics that Verdict exports', async () => {
    const exported = await exportedNames();
    const used = new Set<string>();
    for (const p of graphs) {
      for (const t of p.targets!) {
        const query = grafanaToPromQL(t.expr);
        const tree = parser.parse(query);
        const errors: number[] = [];
        tree.iterate({
          enter: (node) => {
            if (node.type.isError) errors.push(node.from);
            if (node.name === 'VectorSelector') {
              const id = node.node.getChild('Identifier');
              if (id) used.add(query.slice(id.from, id.to));
            }
          },
        });
        expect(errors, `${p.title}: ${query}`).to.deep.equal([]);
      }
    }
    expect(used.size).to.be.greaterThan(15);
    for (const name of used) expect(exported.has(name), `${name} is not exported by Verdict`).to.equal(true);
  });
});
