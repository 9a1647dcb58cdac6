/**
 * Inbound protection filters with an injected clock: greylisting (RFC 6647) over the real SQLite repository,
 * rate limits, DNSBL weights and query names (RFC 5782), HELO sanity, the pregreet memory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate } from '../../src/storage/sqlite/schema.js';
import { SqliteGreylist } from '../../src/storage/sqlite/protection.js';
import { GreylistFilter, clientNetwork, TRIPLET_MAX_AGE_MS } from '../../src/core/inbound/greylist.js';
import { RateLimitFilter } from '../../src/core/inbound/ratelimit.js';
import { DnsblFilter, dnsblQueryName, parseDnsblSite } from '../../src/core/inbound/dnsbl.js';
import { HeloFilter } from '../../src/core/inbound/helo.js';
import { Pregreet } from '../../src/core/inbound/pregreet.js';
import type { AuthOutcome } from '../../src/core/inbound/auth.js';
import type { DataContext, DataResult, SessionInfo } from '../../src/core/inbound/pipeline.js';

const quiet = { info() {}, warn() {} };
const session = (ip = '192.0.2.10'): SessionInfo => ({ id: 'c1', remoteAddress: ip, helo: 'mta.example', tls: false, authenticated: false });
const MIN = 60_000;

function greylist(opts: { allowDomains?: string[]; auth?: Partial<AuthOutcome> } = {}) {
  const db = new Database(':memory:');
  migrate(db);
  let t = 1_700_000_000_000;
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const auth = opts.auth;
  const filter = new GreylistFilter(
    { delayMs: 5 * MIN, autoAllowMs: 35 * 86_400_000, allowDomains: opts.allowDomains ?? [] },
    { repo: new SqliteGreylist(db), log: quiet, now: clock.now, authResults: auth ? async () => auth as AuthOutcome : undefined },
  );
  return { filter, clock };
}

describe('greylisting', () => {
  it('first attempt 451 4.7.1, too early a retry 451, after the delay accepted, then the network is allowed', async () => {
    const { filter, clock } = greylist();
    const s = session();
    const first = await filter.rcpt(s, 'alice@sender.test', 'bob@example.org');
    assert.equal(first?.code, 451);
    assert.equal(first?.enhanced, '4.7.1');
    clock.advance(2 * MIN);
    assert.equal((await filter.rcpt(s, 'alice@sender.test', 'bob@example.org'))?.code, 451, 'retry too early');
    clock.advance(4 * MIN);
    assert.equal(await filter.rcpt(s, 'alice@sender.test', 'bob@example.org'), null, 'retry after the delay');
    // Auto-allow: another sender and recipient from the same /24 pass at once.
    assert.equal(await filter.rcpt(session('192.0.2.99'), 'other@else.test', 'carol@example.org'), null);
    // A different network is greylisted.
    assert.equal((await filter.rcpt(session('198.51.100.1'), 'other@else.test', 'carol@example.org'))?.code, 451);
    // After 35 days the allowance lapses.
    clock.advance(36 * 86_400_000);
    assert.equal((await filter.rcpt(session('192.0.2.50'), 'new@sender.test', 'bob@example.org'))?.code, 451);
  });

  it('a triplet never retried is forgotten after the maximum age', async () => {
    const { filter, clock } = greylist();
    const s = session('203.0.113.5');
    assert.equal((await filter.rcpt(s, 'a@x.test', 'b@example.org'))?.code, 451);
    clock.advance(TRIPLET_MAX_AGE_MS + 2 * 3_600_000);
    assert.equal((await filter.rcpt(s, 'a@x.test', 'b@example.org'))?.code, 451, 'starts over');
  });

  it('groups IPv4 by /24 and IPv6 by /64', () => {
    assert.equal(clientNetwork('192.0.2.77'), '192.0.2.0/24');
    assert.equal(clientNetwork('::ffff:192.0.2.77'), '192.0.2.0/24');
    assert.equal(clientNetwork('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  });

  it('allow-listed domains are decided at the end of DATA: skipped when SPF and DKIM pass, greylisted otherwise', async () => {
    const pass = greylist({ allowDomains: ['bank.test'], auth: { spf: { result: 'pass', domain: 'bank.test' }, dkim: [{ domain: 'bank.test', result: 'pass', aligned: true, algorithm: null }] } });
    assert.equal(await pass.filter.rcpt(session(), 'alerts@bank.test', 'bob@example.org'), null, 'not decided at RCPT');
    const ctx: DataContext = { ...session(), sender: 'alerts@bank.test', recipients: ['bob@example.org'], raw: Buffer.from('') };
    const r1: DataResult = { reject: null, headers: [], junk: false, log: {} };
    await pass.filter.data(ctx, r1);
    assert.equal(r1.reject, null);
    assert.match(String(r1.log.greylist), /skipped/);

    const fail = greylist({ allowDomains: ['bank.test'], auth: { spf: { result: 'pass', domain: 'bank.test' }, dkim: [] } });
    const r2: DataResult = { reject: null, headers: [], junk: false, log: {} };
    await fail.filter.data(ctx, r2);
    assert.equal(r2.reject?.code, 451);
    // Other senders are still greylisted at RCPT.
    assert.equal((await pass.filter.rcpt(session(), 'x@other.test', 'bob@example.org'))?.code, 451);
  });
});

describe('rate limits', () => {
  it('connections, messages and recipients per minute per IP, with 4xx answers and a sliding window', async () => {
    let t = 0;
    const f = new RateLimitFilter({ connectionsPerMinute: 3, messagesPerMinute: 2, recipientsPerMinute: 4 }, () => t);
    const s = session();
    for (let i = 0; i < 3; i++) assert.equal(await f.connect(s), null);
    const c = await f.connect(s);
    assert.equal(c?.code, 421);
    assert.equal(c?.enhanced, '4.7.0');
    assert.equal(await f.connect(session('192.0.2.11')), null, 'per IP');
    assert.equal(await f.mailFrom(s), null);
    assert.equal(await f.mailFrom(s), null);
    assert.equal((await f.mailFrom(s))?.code, 450);
    for (let i = 0; i < 4; i++) assert.equal(await f.rcpt(s), null);
    const r = await f.rcpt(s);
    assert.equal(r?.code, 452);
    assert.equal(r?.enhanced, '4.5.3');
    t += 30_000; // half the previous minute still counts
    assert.equal((await f.mailFrom(s))?.code, 450);
    t += 61_000;
    assert.equal(await f.mailFrom(s), null, 'a minute later');
    const off = new RateLimitFilter({ connectionsPerMinute: 0, messagesPerMinute: 0, recipientsPerMinute: 0 }, () => t);
    for (let i = 0; i < 100; i++) assert.equal(await off.connect(s), null);
  });
});

describe('DNSBL', () => {
  it('parses sites and builds RFC 5782 query names', () => {
    assert.deepEqual(parseDnsblSite('zen.spamhaus.org*2'), { zone: 'zen.spamhaus.org', answer: null, weight: 2 });
    assert.deepEqual(parseDnsblSite('bl.spamcop.net'), { zone: 'bl.spamcop.net', answer: null, weight: 1 });
    assert.deepEqual(parseDnsblSite('list.dnswl.test=127.0.10.1*-5'), { zone: 'list.dnswl.test', answer: '127.0.10.1', weight: -5 });
    assert.throws(() => parseDnsblSite('bad zone'));
    assert.equal(dnsblQueryName('192.0.2.99', 'bl.test'), '99.2.0.192.bl.test');
    assert.equal(dnsblQueryName('2001:db8:1:2:3:4:567:89ab', 'bl.test'), 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test');
  });

  it('sums weights, refuses at the threshold, honours allow lists, ignores error codes, caches', async () => {
    const answers: Record<string, string[]> = {
      '10.2.0.192.bl1.test': ['127.0.0.2'],
      '10.2.0.192.bl2.test': ['127.0.0.4'],
      '20.2.0.192.bl1.test': ['127.0.0.2'],
      '20.2.0.192.wl.test': ['127.0.10.1'],
      '30.2.0.192.bl1.test': ['127.255.255.254'],
    };
    let queries = 0;
    const lookup = async (name: string) => {
      queries++;
      const a = answers[name];
      if (!a) throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
      return a;
    };
    const f = new DnsblFilter({ sites: ['bl1.test', 'bl2.test=127.0.0.4*2', 'wl.test*-5'], threshold: 2, cacheMs: 60_000 }, { lookup, log: quiet });
    const listed = await f.connect(session('192.0.2.10'));
    assert.equal(listed?.code, 554);
    assert.match(listed!.message, /blocked using bl1\.test, bl2\.test/);
    assert.equal(await f.connect(session('192.0.2.20')), null, 'allow list outweighs');
    assert.equal(await f.connect(session('192.0.2.30')), null, 'error code is not a listing');
    const before = queries;
    await f.connect(session('192.0.2.10'));
    assert.equal(queries, before, 'cached');
    assert.equal((await f.score('192.0.2.10')).score, 3);
  });
});

describe('HELO sanity and pregreet memory', () => {
  it('refuses our own name and a foreign address literal', async () => {
    const f = new HeloFilter({ hostname: 'mx.postern.test' });
    const s = session('192.0.2.10');
    assert.equal((await f.helo(s, 'MX.postern.test'))?.code, 550);
    assert.equal((await f.helo(s, '[198.51.100.1]'))?.code, 550);
    assert.equal((await f.helo(s, '198.51.100.1'))?.code, 550);
    assert.equal(await f.helo(s, '[192.0.2.10]'), null);
    assert.equal(await f.helo(session('::ffff:192.0.2.10'), '[192.0.2.10]'), null);
    assert.equal(await f.helo(s, 'mail.sender.test'), null);
  });

  it('unknown clients wait, clients that waited are remembered, a violation forgets them', async () => {
    let t = 0;
    const p = new Pregreet({ waitMs: 2000, rememberMs: 86_400_000, pipeliningCheck: true }, { log: quiet, now: () => t });
    assert.equal(p.bannerDelayMs('192.0.2.1'), 2000);
    await p.connect(session('192.0.2.1'));
    assert.equal(p.bannerDelayMs('192.0.2.1'), 0);
    p.violation('192.0.2.1', 'pipelining');
    assert.equal(p.bannerDelayMs('192.0.2.1'), 2000);
    await p.connect(session('192.0.2.1'));
    t += 86_400_001;
    assert.equal(p.bannerDelayMs('192.0.2.1'), 2000, 'forgotten after pregreet_remember');
  });
});
