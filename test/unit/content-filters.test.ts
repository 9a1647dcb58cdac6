/** Pure parts of the spam, virus, learning and ban modules: scorer rules, header handling, ban counting. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { scoreMessage, authMethods, GTUBE, RULES } from '../../src/core/inbound/scorer.js';
import { stripSpamHeaders, fold, iprevName, ourAuthResults, dnsblScoreFrom, spamHeaders } from '../../src/core/inbound/spam.js';
import { parseClamdAddress } from '../../src/core/inbound/virus.js';
import { lessonOf } from '../../src/core/inbound/spam-learning.js';
import { BanList, banKey } from '../../src/core/bans.js';
import { parseCidrList } from '../../src/net/cidr.js';
import type { Ban, BanRepo } from '../../src/storage/types.js';

const good = (extra = '') =>
  Buffer.from(`From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hi\r\nDate: Tue, 1 Oct 2024 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n${extra}\r\nHello\r\n`);

describe('built-in scorer', () => {
  it('a well-formed, authenticated message scores below zero', () => {
    const r = scoreMessage({ raw: good(), authResults: ['mx.test; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com'], dnsblScore: null });
    assert.deepEqual(r.hits.map((h) => h.rule), ['SPF_PASS', 'DKIM_PASS', 'DMARC_PASS']);
    assert.ok(r.score < 0);
  });
  it('adds up header faults, authentication failures and DNSBL weight', () => {
    const raw = Buffer.from('From: not an address\r\nTo: bob@example.org\r\n\r\nbody\r\n');
    const r = scoreMessage({ raw, authResults: ['mx.test; spf=fail (sender not allowed) smtp.mailfrom=x.test; dkim=fail; dmarc=fail header.from=x.test'], dnsblScore: 1 });
    const rules = r.hits.map((h) => h.rule).sort();
    assert.deepEqual(rules, ['DKIM_FAIL', 'DMARC_FAIL', 'DNSBL', 'INVALID_FROM', 'MISSING_DATE', 'MISSING_MESSAGE_ID', 'MISSING_SUBJECT', 'SPF_FAIL']);
    assert.equal(r.score, Math.round((RULES.DKIM_FAIL + RULES.DMARC_FAIL + RULES.DNSBL + RULES.INVALID_FROM + RULES.MISSING_DATE + RULES.MISSING_MESSAGE_ID + RULES.MISSING_SUBJECT + RULES.SPF_FAIL) * 100) / 100);
  });
  it('GTUBE is spam by definition', () => {
    assert.ok(scoreMessage({ raw: good(), authResults: [], dnsblScore: null }).score < 5);
    assert.ok(scoreMessage({ raw: Buffer.concat([good(), Buffer.from(GTUBE)]), authResults: [], dnsblScore: null }).score >= 1000);
  });
  it('reads RFC 8601 method results, ignoring comments and properties', () => {
    const m = authMethods(['mx; spf=softfail (domain of x does not designate) smtp.mailfrom=x; dkim=pass (good sig) header.d=a; dkim=fail header.d=b; iprev=pass policy.iprev=192.0.2.1 (mail.example.com)']);
    assert.deepEqual([...m.get('spf')!], ['softfail']);
    assert.deepEqual([...m.get('dkim')!].sort(), ['fail', 'pass']);
    assert.deepEqual([...m.get('iprev')!], ['pass']);
  });
});

describe('spam filter helpers', () => {
  it('removes X-Spam fields a sender put in the header, and only there', () => {
    const raw = Buffer.from('X-Spam-Status: No, score=-100\r\n\tfolded\r\nSubject: s\r\nX-Spam: no\r\nX-Spammy: keep\r\n\r\nX-Spam-Status: in body\r\n');
    assert.equal(stripSpamHeaders(raw).toString(), 'Subject: s\r\nX-Spammy: keep\r\n\r\nX-Spam-Status: in body\r\n');
    const clean = Buffer.from('Subject: s\r\n\r\nb');
    assert.equal(stripSpamHeaders(clean), clean);
  });
  it('folds long fields within 78 characters', () => {
    const f = fold('X-Spam-Status', `Yes, score=7.00 required=6.00 engine=rspamd tests=${Array.from({ length: 20 }, (_, i) => `SYMBOL_NUMBER_${i}`).join(',')}`);
    for (const line of f.split('\r\n').filter(Boolean)) assert.ok(line.length <= 78, line);
    assert.match(f, /\r\n$/);
    // Unfolding (RFC 5322 2.2.3) removes the CRLFs; the WSP after them stays.
    const unfolded = f.replace(/\r\n/g, '');
    assert.equal(unfolded.replace(/\s+/g, ''), `X-Spam-Status: Yes, score=7.00 required=6.00 engine=rspamd tests=${Array.from({ length: 20 }, (_, i) => `SYMBOL_NUMBER_${i}`).join(',')}`.replace(/\s+/g, ''));
    assert.match(unfolded, /engine=rspamd\s+tests=/);
  });
  it('X-Spam headers: flag only for spam', () => {
    assert.deepEqual(spamHeaders(false, 1, 5, 'postern', []), ['X-Spam-Score: 1.00\r\n', 'X-Spam-Status: No, score=1.00 required=5.00 engine=postern\r\n']);
    assert.equal(spamHeaders(true, 9, 5, 'postern', ['A'])[0], 'X-Spam-Flag: YES\r\n');
  });
  it('takes the iprev host name and the DNSBL score from the earlier filters', () => {
    const ar = ourAuthResults(['Received: x\r\n', 'Authentication-Results: mx.test;\r\n spf=pass smtp.mailfrom=a.test;\r\n iprev=pass policy.iprev=192.0.2.1 (mail.a.test)\r\n']);
    assert.equal(ar.length, 1);
    assert.equal(iprevName(ar), 'mail.a.test');
    assert.equal(iprevName(['mx; iprev=fail policy.iprev=192.0.2.1']), null);
    assert.equal(dnsblScoreFrom({ dnsbl: { score: 1, zones: ['x'] } }), 1);
    assert.equal(dnsblScoreFrom({}), null);
  });
});

describe('clamd address and learning decisions', () => {
  it('parses clamd addresses', () => {
    assert.deepEqual(parseClamdAddress('unix:/run/clamav/clamd.ctl'), { path: '/run/clamav/clamd.ctl' });
    assert.deepEqual(parseClamdAddress('127.0.0.1:3310'), { host: '127.0.0.1', port: 3310 });
    assert.deepEqual(parseClamdAddress('[::1]:3310'), { host: '::1', port: 3310 });
    assert.throws(() => parseClamdAddress('localhost'), /invalid clamd address/);
  });
  it('into Junk teaches spam; out of Junk teaches ham, except into Trash', () => {
    assert.equal(lessonOf(null, '\\Junk'), 'spam');
    assert.equal(lessonOf('\\Archive', '\\Junk'), 'spam');
    assert.equal(lessonOf('\\Junk', null), 'ham');
    assert.equal(lessonOf('\\Junk', '\\Trash'), null);
    assert.equal(lessonOf('\\Junk', '\\Junk'), null);
    assert.equal(lessonOf(null, '\\Archive'), null);
  });
});

class MemBans implements BanRepo {
  rows = new Map<string, Ban>();
  async put(b: Ban) {
    this.rows.set(b.ip, b);
  }
  async delete(ip: string) {
    return this.rows.delete(ip);
  }
  async active(now: number) {
    return [...this.rows.values()].filter((b) => b.until > now);
  }
  async purge(now: number) {
    let n = 0;
    for (const [k, b] of this.rows) if (b.until <= now && this.rows.delete(k)) n++;
    return n;
  }
}

describe('ban list', () => {
  const quiet = { info() {}, warn() {} };
  const make = (exempt: string[] = []) => {
    let now = 1_000_000;
    const repo = new MemBans();
    const bans = new BanList({ enabled: true, afterFailures: 3, windowMs: 60_000, banTimeMs: 3_600_000, exempt: parseCidrList(exempt) }, { repo, log: quiet, now: () => now });
    return { bans, repo, tick: (ms: number) => (now += ms) };
  };

  it('bans after N failures within the window, persists, and lapses', async () => {
    const { bans, repo, tick } = make();
    bans.onFailure('192.0.2.7');
    bans.onFailure('192.0.2.7');
    assert.equal(bans.admit('192.0.2.7'), true);
    bans.onFailure('::ffff:192.0.2.7'); // the same address, IPv4-mapped
    assert.equal(bans.admit('192.0.2.7'), false);
    assert.equal(bans.admit('192.0.2.8'), true);
    await new Promise((r) => setImmediate(r));
    assert.equal(repo.rows.get('192.0.2.7')?.until, 1_000_000 + 3_600_000);
    tick(3_600_001);
    assert.equal(bans.admit('192.0.2.7'), true);
  });

  it('failures spread wider than the window do not ban', () => {
    const { bans, tick } = make();
    for (let i = 0; i < 10; i++) {
      bans.onFailure('2001:db8::1');
      tick(31_000);
    }
    assert.equal(bans.admit('2001:db8::1'), true);
  });

  it('exempt networks are never banned, not even by a ban row', async () => {
    const { bans, repo } = make(['127.0.0.0/8', '2001:db8::/32']);
    for (let i = 0; i < 5; i++) bans.onFailure('127.0.0.1');
    assert.equal(bans.admit('127.0.0.1'), true);
    await repo.put({ ip: '2001:db8::5', created: 0, until: Number.MAX_SAFE_INTEGER, reason: 'manual' });
    await bans.refresh();
    assert.equal(bans.admit('2001:db8:0:0::5'), true);
    assert.equal(repo.rows.size, 1);
  });

  it('reload picks up bans added or removed by another process', async () => {
    const { bans, repo } = make();
    await repo.put({ ip: banKey('2001:DB8::9')!, created: 0, until: Number.MAX_SAFE_INTEGER, reason: 'manual' });
    assert.equal(bans.admit('2001:db8::9'), true);
    await bans.refresh();
    assert.equal(bans.admit('2001:db8::9'), false);
    await repo.delete('2001:db8::9');
    await bans.refresh();
    assert.equal(bans.admit('2001:db8::9'), true);
  });
});
