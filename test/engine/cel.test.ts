import * as celReference from '@marcbachmann/cel-js';
import { expect } from 'chai';
import { both, check, expectDecision, file, load, onlyIssue } from './helpers.js';

describe('CEL in policies', () => {
  describe('inCidr', () => {
    const set = load(
      file(
        'a.yaml',
        `resource: doc
rules:
  - name: v4
    actions: [v4]
    effect: allow
    when: inCidr(context.ip, "10.0.0.0/8")
  - name: v4-host
    actions: [host]
    effect: allow
    when: inCidr(context.ip, "192.168.1.7")
  - name: v4-any
    actions: [any4]
    effect: allow
    when: inCidr(context.ip, "0.0.0.0/0")
  - name: v6
    actions: [v6]
    effect: allow
    when: inCidr(context.ip, "2001:db8::/32")
  - name: v6-ula
    actions: [ula]
    effect: allow
    when: inCidr(context.ip, "fd12:3456::/32")
  - name: v6-link-local
    actions: [link]
    effect: allow
    when: inCidr(context.ip, "fe80::/10")
  - name: dynamic-block
    actions: [dynamic]
    effect: allow
    when: inCidr(context.ip, context.block)
  - name: deny-outside
    actions: [guarded]
    effect: deny
    when: "!inCidr(context.ip, \\"10.0.0.0/8\\")"
  - name: guarded-allow
    actions: [guarded]
    effect: allow
`,
      ),
    );
    const at = (action: string, ip: unknown, extra: Record<string, unknown> = {}) => both(set, { action, context: { ip, ...extra } });

    it('IPv4 addresses inside and outside a block', () => {
      for (const ip of ['10.0.0.0', '10.1.2.3', '10.255.255.255']) expectDecision(at('v4', ip), 'ALLOW', 'RULE_ALLOW', 'v4');
      for (const ip of ['9.255.255.255', '11.0.0.0', '192.168.0.1', '100.0.0.1']) expectDecision(at('v4', ip), 'DENY', 'NO_MATCHING_RULE');
    });

    it('a block without a prefix length is a single host; /0 is every IPv4 address', () => {
      expectDecision(at('host', '192.168.1.7'), 'ALLOW', 'RULE_ALLOW', 'v4-host');
      expectDecision(at('host', '192.168.1.8'), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(at('any4', '1.2.3.4'), 'ALLOW', 'RULE_ALLOW', 'v4-any');
      expectDecision(at('any4', '255.255.255.255'), 'ALLOW', 'RULE_ALLOW', 'v4-any');
      expectDecision(at('any4', '2001:db8::1'), 'DENY', 'NO_MATCHING_RULE');
    });

    it('IPv6 addresses inside and outside a block, in any notation', () => {
      for (const ip of ['2001:db8::1', '2001:0db8:0000:0000:0000:0000:0000:0001', '2001:DB8:FFFF:FFFF::', '2001:db8::']) {
        expectDecision(at('v6', ip), 'ALLOW', 'RULE_ALLOW', 'v6');
      }
      for (const ip of ['2001:db9::1', '2001:db7:ffff::1', '::1', 'fd12:3456::1']) expectDecision(at('v6', ip), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(at('ula', 'fd12:3456:789a::1'), 'ALLOW', 'RULE_ALLOW', 'v6-ula');
      expectDecision(at('ula', 'fd12:3457::1'), 'DENY', 'NO_MATCHING_RULE');
    });

    it('a zone id is ignored', () => {
      expectDecision(at('link', 'fe80::1%eth0'), 'ALLOW', 'RULE_ALLOW', 'v6-link-local');
      expectDecision(at('link', 'fec0::1'), 'DENY', 'NO_MATCHING_RULE');
    });

    it('an IPv4-mapped IPv6 address counts as the IPv4 address', () => {
      expectDecision(at('v4', '::ffff:10.1.2.3'), 'ALLOW', 'RULE_ALLOW', 'v4');
      expectDecision(at('v4', '::FFFF:10.1.2.3'), 'ALLOW', 'RULE_ALLOW', 'v4');
      expectDecision(at('v4', '::ffff:a01:203'), 'ALLOW', 'RULE_ALLOW', 'v4');
      expectDecision(at('v4', '0:0:0:0:0:ffff:10.1.2.3'), 'ALLOW', 'RULE_ALLOW', 'v4');
      expectDecision(at('v4', '::ffff:11.1.2.3'), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(at('host', '::ffff:192.168.1.7'), 'ALLOW', 'RULE_ALLOW', 'v4-host');
      // Mapped addresses are not IPv6 addresses for IPv6 blocks.
      expectDecision(at('v6', '::ffff:10.1.2.3'), 'DENY', 'NO_MATCHING_RULE');
      // An IPv4-compatible (not mapped) form is a plain IPv6 address.
      expectDecision(at('v4', '::10.1.2.3'), 'DENY', 'NO_MATCHING_RULE');
    });

    it('an IPv4 address is never inside an IPv6 block, nor the other way round', () => {
      expectDecision(at('v6', '10.1.2.3'), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(at('v4', '2001:db8::1'), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(at('v4', '::a01:203'), 'DENY', 'NO_MATCHING_RULE');
    });

    it('an address that does not parse is simply outside (not an error)', () => {
      for (const ip of ['unknown', '', '10.1.2', '10.1.2.3.4', '10.1.2.256', '010.1.2.3', '10.1.2.3/8', ' 10.1.2.3', 'fe80::1::2']) {
        const d = at('v4', ip);
        expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
        expect(d.errors, ip).to.deep.equal([]);
      }
      // In a deny rule, "outside" denies.
      expectDecision(at('guarded', 'unknown'), 'DENY', 'RULE_DENY', 'deny-outside');
      expectDecision(at('guarded', '10.9.9.9'), 'ALLOW', 'RULE_ALLOW', 'guarded-allow');
    });

    it('a non-string address is an evaluation error (fails closed)', () => {
      const d = at('v4', 167837953);
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.errors.map((e) => e.rule)).to.deep.equal(['v4']);
      expectDecision(at('guarded', 42), 'DENY', 'RULE_ERROR', 'deny-outside');
      expectDecision(both(set, { action: 'guarded', context: {} }), 'DENY', 'RULE_ERROR', 'deny-outside');
    });

    it('a CIDR computed at evaluation time is parsed then; an invalid one is an error', () => {
      expectDecision(at('dynamic', '172.16.5.4', { block: '172.16.0.0/12' }), 'ALLOW', 'RULE_ALLOW', 'dynamic-block');
      expectDecision(at('dynamic', '172.32.0.1', { block: '172.16.0.0/12' }), 'DENY', 'NO_MATCHING_RULE');
      const d = at('dynamic', '172.16.5.4', { block: '172.16.0.0/40' });
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.errors).to.have.length(1);
      expect(d.errors[0]!.message).to.match(/invalid CIDR "172\.16\.0\.0\/40"/);
      const bad = at('dynamic', '172.16.5.4', { block: 'not-a-block' });
      expect(bad.errors[0]!.message).to.match(/not an IP address/);
    });

    it('an invalid literal CIDR is rejected at load with its position', () => {
      const issue = onlyIssue(
        file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: has(context.ip) && inCidr(context.ip, "10.0.0.0/33")\n'),
      );
      expect([issue.code, issue.line, issue.column]).to.deep.equal(['CEL_UNSAFE', 8, 49]);
      const v6 = onlyIssue(file('a.yaml', 'resource: doc\nvariables:\n  v: inCidr(context.ip, "fd12::zz/16")\nrules: []\n'));
      expect([v6.code, v6.line, v6.column]).to.deep.equal(['CEL_UNSAFE', 5, 25]);
    });
  });

  describe('matches()', () => {
    const set = load(
      file(
        'a.yaml',
        `resource: doc
rules:
  - name: unanchored
    actions: [list]
    effect: allow
    when: resource.attributes.name.matches("secret")
  - name: hex
    actions: [hash]
    effect: allow
    when: resource.attributes.h.matches("^[0-9a-f]{32}$")
`,
      ),
    );

    it('matches with anchors and escapes', () => {
      const s = load(
        file(
          'b.yaml',
          `resource: doc
rules:
  - name: ids
    actions: [read]
    effect: allow
    when: 'resource.attributes.id.matches("^INV-\\\\d{6}$")'
`,
        ),
      );
      expectDecision(both(s, { resource: { id: 'INV-123456' } }), 'ALLOW', 'RULE_ALLOW', 'ids');
      expectDecision(both(s, { resource: { id: 'INV-12345' } }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(s, { resource: { id: 'xINV-123456' } }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(s, { resource: { id: 'INV-abcdef' } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('an unanchored pattern matches anywhere', () => {
      expectDecision(both(set, { action: 'list', resource: { name: 'top-secret-plan' } }), 'ALLOW', 'RULE_ALLOW', 'unanchored');
      expectDecision(both(set, { action: 'list', resource: { name: 'Secret' } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('counted repetition over 16 loads and works', () => {
      expectDecision(both(set, { action: 'hash', resource: { h: 'a'.repeat(32) } }), 'ALLOW', 'RULE_ALLOW', 'hex');
      expectDecision(both(set, { action: 'hash', resource: { h: 'a'.repeat(31) } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('nested counted repetition that cannot run in linear time is rejected', () => {
      const issue = onlyIssue(file('a.yaml', 'resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: resource.id.matches("(x{1,40}){1,40}")\n'));
      expect([issue.code, issue.line, issue.column]).to.deep.equal(['CEL_UNSAFE', 8, 31]);
    });

    it('matching a non-string is an evaluation error', () => {
      const d = both(set, { action: 'list', resource: { name: 42 } });
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.errors.map((e) => e.rule)).to.deep.equal(['unanchored']);
    });
  });

  describe('ReDoS safety', () => {
    const cases: [string, string][] = [
      ['(a+)+$', 'a'.repeat(30) + '!'],
      ['(a*)*b', 'a'.repeat(30)],
      ['(a|aa)+$', 'a'.repeat(40) + '!'],
      ['^(\\\\w+\\\\s?)*$', 'a'.repeat(40) + '!'],
      ['(x+x+)+y', 'x'.repeat(30)],
    ];

    it('a policy with resource.attributes.name.matches("(a+)+$") loads and decides in under 200 ms', () => {
      const set = load(
        file(
          'a.yaml',
          `resource: doc
rules:
  - name: evil
    actions: [read]
    effect: allow
    when: resource.attributes.name.matches("(a+)+$")
  - name: evil-deny
    actions: [delete]
    effect: deny
    when: resource.attributes.name.matches("(a+)+$")
  - name: anyone-deletes
    actions: [delete]
    effect: allow
`,
        ),
      );
      const name = 'a'.repeat(30) + '!';
      let start = performance.now();
      const d = check(set, { action: 'read', resource: { name } });
      let elapsed = performance.now() - start;
      expect(elapsed, `took ${elapsed.toFixed(1)} ms`).to.be.below(200);
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.errors).to.deep.equal([]);

      start = performance.now();
      const del = check(set, { action: 'delete', resource: { name } });
      elapsed = performance.now() - start;
      expect(elapsed, `took ${elapsed.toFixed(1)} ms`).to.be.below(200);
      expectDecision(del, 'ALLOW', 'RULE_ALLOW', 'anyone-deletes');

      // The pattern still means what it says.
      expectDecision(check(set, { action: 'read', resource: { name: 'a'.repeat(30) } }), 'ALLOW', 'RULE_ALLOW', 'evil');
      expectDecision(check(set, { action: 'delete', resource: { name: 'baaa' } }), 'DENY', 'RULE_DENY', 'evil-deny');
    });

    for (const [pattern, input] of cases) {
      it(`pattern ${pattern} on a hostile input decides in under 200 ms`, () => {
        const set = load(file('a.yaml', `resource: doc\nrules:\n  - name: r\n    actions: [read]\n    effect: allow\n    when: 'resource.attributes.name.matches("${pattern}")'\n`));
        const start = performance.now();
        const d = check(set, { resource: { name: input } });
        const elapsed = performance.now() - start;
        expect(elapsed, `took ${elapsed.toFixed(1)} ms`).to.be.below(200);
        expect(d.errors).to.deep.equal([]);
      });
    }
  });

  describe('attributes, has() and types', () => {
    const set = load(
      file(
        'a.yaml',
        `resource: doc
rules:
  - name: has-guard
    actions: [read]
    effect: allow
    when: has(resource.attributes.owner) && resource.attributes.owner == subject.id
  - name: index-syntax
    actions: [list]
    effect: allow
    when: resource.attributes["x-team"] == "blue"
  - name: nested
    actions: [edit]
    effect: allow
    when: subject.attributes.manager.id == resource.attributes.owner
  - name: membership
    actions: [share]
    effect: allow
    when: subject.id in resource.attributes.editors
  - name: list-macros
    actions: [tag]
    effect: allow
    when: resource.attributes.tags.exists(t, t.startsWith("public-")) && size(resource.attributes.tags) <= 3
`,
      ),
    );

    it('has() guards a missing attribute without an error', () => {
      const d = both(set, { resource: {} });
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.errors).to.deep.equal([]);
      expectDecision(both(set, { id: 'alice', resource: { owner: 'alice' } }), 'ALLOW', 'RULE_ALLOW', 'has-guard');
    });

    it('index syntax for keys that are not identifiers', () => {
      expectDecision(both(set, { action: 'list', resource: { 'x-team': 'blue' } }), 'ALLOW', 'RULE_ALLOW', 'index-syntax');
      expectDecision(both(set, { action: 'list', resource: { 'x-team': 'red' } }), 'DENY', 'NO_MATCHING_RULE');
    });

    it('nested maps', () => {
      expectDecision(both(set, { action: 'edit', subject: { manager: { id: 'bob' } }, resource: { owner: 'bob' } }), 'ALLOW', 'RULE_ALLOW', 'nested');
      const d = both(set, { action: 'edit', subject: { manager: 'bob' }, resource: { owner: 'bob' } });
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.errors).to.have.length(1);
    });

    it('list membership, and an error when the attribute is not a list', () => {
      expectDecision(both(set, { id: 'carol', action: 'share', resource: { editors: ['bob', 'carol'] } }), 'ALLOW', 'RULE_ALLOW', 'membership');
      expectDecision(both(set, { id: 'dave', action: 'share', resource: { editors: ['bob', 'carol'] } }), 'DENY', 'NO_MATCHING_RULE');
      const d = both(set, { id: 'carol', action: 'share', resource: { editors: 5 } });
      expectDecision(d, 'DENY', 'NO_MATCHING_RULE');
      expect(d.errors.map((e) => e.rule)).to.deep.equal(['membership']);
    });

    it('a string in a list of mixed values answers as cel-js does (the metered scan is a strict-equality search)', () => {
      const editors = [1, 2.5, true, null, ['carol'], { carol: 'carol' }, 'Carol', 'carol '];
      const { evaluate } = celReference;
      for (const [id, list] of [
        ['carol', editors],
        ['carol', [...editors, 'carol']],
        ['', ['']],
        ['1', editors],
        ['true', editors],
      ] as const) {
        const expected = evaluate('id in editors', { id, editors: list }) as boolean;
        expectDecision(both(set, { id, action: 'share', resource: { editors: list } }), expected ? 'ALLOW' : 'DENY', expected ? 'RULE_ALLOW' : 'NO_MATCHING_RULE', expected ? 'membership' : undefined);
      }
    });

    it('macros over lists', () => {
      expectDecision(both(set, { action: 'tag', resource: { tags: ['a', 'public-x'] } }), 'ALLOW', 'RULE_ALLOW', 'list-macros');
      expectDecision(both(set, { action: 'tag', resource: { tags: ['a', 'b'] } }), 'DENY', 'NO_MATCHING_RULE');
      expectDecision(both(set, { action: 'tag', resource: { tags: ['public-1', 'b', 'c', 'd'] } }), 'DENY', 'NO_MATCHING_RULE');
    });
  });
});
