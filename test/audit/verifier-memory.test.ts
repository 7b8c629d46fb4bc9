import { expect } from 'chai';
import { addRange, subtractRanges, type Range } from '../../src/audit/ranges.js';
import { ChainVerifier, VERIFIER_LIMITS } from '../../src/audit/verifier.js';
import { chainOfInstance } from './support.js';

describe('evidence: the verifier\'s memory stays bounded over an unbounded run', function () {
  this.timeout(60_000);

  it('many chains: the least recently active are forgotten beyond the limit, the active ones keep verifying', () => {
    const v = new ChainVerifier({ anchorUnknownChains: true, keepFindings: 10 });
    const live = chainOfInstance('live', 6000).events.map((e) => JSON.parse(e.payload));
    const shortChains = 3000;
    let next = 0;
    for (let c = 0; c < shortChains; c++) {
      for (const e of chainOfInstance(`pdp-${c}`, 2, `boot-${c}`).events) v.accept(JSON.parse(e.payload), `chain ${c}`);
      // The live chain goes on between them.
      v.accept(live[next++], `live ${next}`);
      v.accept(live[next++], `live ${next}`);
    }
    expect(v.findingCount).to.equal(0);
    const size = v.size();
    expect(size.chains).to.equal(VERIFIER_LIMITS.maxChains);
    expect(v.evictedChains).to.equal(shortChains + 1 - VERIFIER_LIMITS.maxChains);
    expect(size.recent).to.be.at.most(VERIFIER_LIMITS.maxChains * VERIFIER_LIMITS.recentPerChain);
    expect(v.head('live/boot-1')).to.include({ seq: 6000 });
    expect(v.notes.length).to.be.at.most(VERIFIER_LIMITS.notes);
  });

  it('one long chain: recent hashes and ranges are capped; findings beyond the kept number are only counted', () => {
    const v = new ChainVerifier({ keepFindings: 100 });
    const events = chainOfInstance('long', 20_000).events;
    // Every other event is missing after the first 1000: many gaps, many ranges.
    events.forEach((e, i) => {
      if (i < 1000 || i % 2 === 0) v.accept(JSON.parse(e.payload), `line ${i + 1}`);
    });
    expect(v.size().pendingGaps, 'gaps waiting for a publish-refused record are capped').to.be.at.most(VERIFIER_LIMITS.pendingGapsPerChain);
    v.finish();
    const size = v.size();
    expect(size.recent).to.be.at.most(VERIFIER_LIMITS.recentPerChain);
    expect(size.ranges).to.be.at.most(2 * VERIFIER_LIMITS.rangesPerChain);
    expect(v.findings.length).to.equal(100);
    expect(v.findingCount).to.be.greaterThan(5_000);
    expect(v.chainSummaries()[0]!.partialHistory).to.equal(true);
  });

  it('ranges merge and subtract', () => {
    const list: Range[] = [];
    for (const [a, b] of [[5, 6], [1, 2], [3, 4], [10, 12], [8, 8]] as Range[]) addRange(list, a, b, 10);
    expect(list).to.deep.equal([[1, 6], [8, 8], [10, 12]]);
    expect(subtractRanges([[1, 12]], list)).to.deep.equal([[7, 7], [9, 9]]);
    expect(subtractRanges([[1, 20]], [[1, 10]])).to.deep.equal([[11, 20]]);
    const capped: Range[] = [];
    for (let i = 0; i < 10; i++) expect(addRange(capped, i * 3, i * 3, 4)).to.equal(i < 4);
    expect(capped).to.have.length(4);
  });
});
