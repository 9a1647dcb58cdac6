/**
 * MTA-STS (RFC 8461) parsing and policy caching: the TXT record (3.1), the policy text (3.2), MX patterns (4.1),
 * and the cache rules of 5.1 (refetch only when the id changes, keep the cached policy when a refetch fails or the
 * record disappears, forget it after max_age, "none" withdraws it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MtaSts, mxMatches, parseStsPolicy, stsRecordId } from '../../src/core/mta-sts.js';
import { DnsError, type Resolver } from '../../src/lib/dns/resolver.js';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { inTempDir } from '../harness/store.js';

test('the TXT record: one v=STSv1 record with an id', () => {
  assert.equal(stsRecordId([['v=STSv1; id=20160831085700Z;']]), '20160831085700Z');
  assert.equal(stsRecordId([['v=STSv1;', ' id=abc123']]), 'abc123', 'character-strings are joined');
  assert.equal(stsRecordId([['v=spf1 -all'], ['v=STSv1; id=x1;']]), 'x1', 'other TXT records are ignored');
  assert.equal(stsRecordId([['v=STSv1; id=a;'], ['v=STSv1; id=b;']]), null, 'two records: none');
  assert.equal(stsRecordId([['v=STSv1;']]), null, 'no id');
  assert.equal(stsRecordId([['v=STSv1; id=not-alnum;']]), null);
});

test('the policy text: version, mode, mx lines, max_age', () => {
  assert.deepEqual(parseStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n'), {
    mode: 'enforce',
    mx: ['mail.example.com', '*.example.net'],
    maxAge: 604800,
  });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 86400\n'), { mode: 'none', mx: [], maxAge: 86400 });
  assert.equal(parseStsPolicy('version: STSv1\nmode: enforce\nmax_age: 86400\n'), null, 'enforce without mx');
  assert.equal(parseStsPolicy('version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n'), null);
  assert.equal(parseStsPolicy('version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n'), null);
  assert.equal(parseStsPolicy('version: STSv1\nmode: testing\nmx: a.test\n'), null, 'max_age is required');
  assert.equal(parseStsPolicy('version: STSv1\nmode: testing\nmx: a.test\nmax_age: 99999999\n')!.maxAge, 31557600, 'max_age capped at a year');
});

test('MX patterns: exact names, and a wildcard for one leftmost label', () => {
  assert.ok(mxMatches('Mail.Example.com.', ['mail.example.com']));
  assert.ok(mxMatches('mx1.example.net', ['*.example.net']));
  assert.ok(!mxMatches('a.b.example.net', ['*.example.net']), 'one label only');
  assert.ok(!mxMatches('example.net', ['*.example.net']));
  assert.ok(!mxMatches('mail.example.org', ['mail.example.com', '*.example.net']));
});

function fixture() {
  const txt = new Map<string, string[][] | DnsError>();
  const resolver: Resolver = {
    mx: async () => [],
    a: async () => ['127.0.0.1'],
    aaaa: async () => [],
    txt: async (name) => {
      const r = txt.get(name);
      if (!r) throw new DnsError('nxdomain', 'nxdomain', 'ENOTFOUND');
      if (r instanceof DnsError) throw r;
      return r;
    },
  };
  let now = 1_000_000;
  let body: string | Error = 'version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 100\n';
  let fetches = 0;
  const fetch = async () => {
    fetches++;
    if (body instanceof Error) throw body;
    return body;
  };
  const sts = new MtaSts({ resolver, now: () => now, fetchPolicy: fetch });
  return {
    sts,
    resolver,
    fetch,
    now: () => now,
    record: (id: string | null) => (id === null ? txt.delete('_mta-sts.a.test') : txt.set('_mta-sts.a.test', [[`v=STSv1; id=${id};`]])),
    dnsFails: () => txt.set('_mta-sts.a.test', new DnsError('timeout', 'temporary', 'ETIMEOUT')),
    setBody: (b: string | Error) => (body = b),
    advance: (s: number) => (now += s * 1000),
    fetches: () => fetches,
  };
}

test('cache: fetched once per id, kept when the record goes or the refetch fails, gone after max_age', async () => {
  const f = fixture();
  assert.equal(await f.sts.policy('a.test'), null, 'no record: no policy');
  f.record('one');
  assert.equal((await f.sts.policy('A.test'))?.mode, 'enforce');
  assert.equal((await f.sts.policy('a.test'))?.id, 'one');
  assert.equal(f.fetches(), 1, 'same id: not fetched again');
  f.record(null);
  assert.equal((await f.sts.policy('a.test'))?.id, 'one', 'the record gone: the cached policy stays');
  f.dnsFails();
  assert.equal((await f.sts.policy('a.test'))?.id, 'one', 'a DNS failure: the cached policy stays');
  f.record('two');
  f.setBody(new Error('connection refused'));
  assert.equal((await f.sts.policy('a.test'))?.id, 'one', 'a failed refetch: the cached policy stays');
  f.setBody('version: STSv1\nmode: testing\nmx: mx.a.test\nmax_age: 100\n');
  const p = await f.sts.policy('a.test');
  assert.deepEqual([p?.id, p?.mode], ['two', 'testing'], 'a new id: fetched again');
  f.record(null);
  f.advance(101);
  assert.equal(await f.sts.policy('a.test'), null, 'past max_age the cached policy is gone');
});

test('cache: mode none withdraws a cached policy; no policy when the first fetch fails', async () => {
  const f = fixture();
  f.record('one');
  assert.equal((await f.sts.policy('a.test'))?.mode, 'enforce');
  f.record('two');
  f.setBody('version: STSv1\nmode: none\nmax_age: 100\n');
  assert.equal(await f.sts.policy('a.test'), null);
  f.record(null);
  assert.equal(await f.sts.policy('a.test'), null, 'nothing left in the cache');
  const g = fixture();
  g.record('x');
  g.setBody('not a policy');
  assert.equal(await g.sts.policy('a.test'), null);
});

test('policies survive a restart: kept in the database, used without a record or a fetch, forgotten after max_age', async () => {
  await inTempDir('postern-sts-', async (dir) => {
    let store = new SqliteStore({ dataDir: dir });
    const f = fixture();
    f.record('one');
    const first = new MtaSts({ resolver: f.resolver, store: store.stsPolicies, now: f.now, fetchPolicy: f.fetch });
    assert.equal((await first.policy('a.test'))?.mode, 'enforce');
    await store.close();
    // A new process, and an attacker strips the record (or blocks the fetch): the policy is still known.
    store = new SqliteStore({ dataDir: dir });
    f.record(null);
    f.setBody(new Error('blocked'));
    const again = new MtaSts({ resolver: f.resolver, store: store.stsPolicies, now: f.now, fetchPolicy: f.fetch });
    const p = await again.policy('a.test');
    assert.deepEqual([p?.id, p?.mode, p?.mx], ['one', 'enforce', ['mx.a.test']]);
    assert.equal(f.fetches(), 1, 'fetched once, by the first process');
    f.advance(101);
    assert.equal(await again.policy('a.test'), null, 'expired');
    assert.equal(await store.stsPolicies.get('a.test'), null, 'and deleted from the database');
    await store.close();
  });
});
