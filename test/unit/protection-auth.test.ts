/**
 * Sender authentication (core/inbound/auth.ts) against our test DNS server: SPF pass/fail/softfail/permerror
 * (RFC 7208), DKIM good/bad with RSA and Ed25519 (RFC 6376, RFC 8463), DMARC reject/quarantine/none (RFC 7489),
 * ARC-sealed forwarded mail from a trusted and an untrusted list (RFC 8617), iprev, and the removal of forged
 * Authentication-Results (RFC 8601 5).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { rsaKey, ed25519Key, keyRecord, message, sign, seal, type TestKey } from '../harness/mailauth.js';
import { AuthFilter, stripOwnAuthResults, reverseName } from '../../src/core/inbound/auth.js';
import { createDnsLookup } from '../../src/lib/dns/mailauth-resolver.js';
import type { DataContext, DataResult } from '../../src/core/inbound/pipeline.js';

const HOST = 'mx.postern.test';
const quiet = { info() {}, warn() {} };

describe('sender authentication', () => {
  let dns: DnsServer;
  let rsa: TestKey;
  let ed: TestKey;
  let list: TestKey;
  let auth: AuthFilter;

  before(async () => {
    rsa = rsaKey();
    ed = ed25519Key();
    list = rsaKey();
    dns = await startDnsServer({
      records: {
        'pass.test': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }],
        'fail.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 -all' }],
        'soft.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 ~all' }],
        'perm.test': [{ type: 'TXT', data: 'v=spf1 bogus:192.0.2.1 -all' }],
        'reject.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 -all' }],
        '_dmarc.reject.test': [{ type: 'TXT', data: 'v=DMARC1; p=reject' }],
        'sel._domainkey.reject.test': keyRecord(rsa),
        'quar.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 -all' }],
        '_dmarc.quar.test': [{ type: 'TXT', data: 'v=DMARC1; p=quarantine' }],
        'none.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 ~all' }],
        '_dmarc.none.test': [{ type: 'TXT', data: 'v=DMARC1; p=none' }],
        'ed._domainkey.none.test': keyRecord(ed),
        'client.pass.test': [{ type: 'A', data: '127.0.0.1' }],
        '1.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'client.pass.test' }],
        'lists.trusted.test': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }],
        'arc._domainkey.lists.trusted.test': keyRecord(list),
        'lists.other.test': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }],
        'arc._domainkey.lists.other.test': keyRecord(list),
      },
    });
    auth = new AuthFilter({ hostname: HOST, arcTrustedSealers: ['trusted.test'] }, { lookup: createDnsLookup({ servers: [dns.address] }), log: quiet, random: () => 0 });
  });
  after(() => dns.close());

  async function check(sender: string, raw: string, helo = 'client.pass.test'): Promise<{ result: DataResult; ctx: DataContext; header: string }> {
    const ctx: DataContext = { id: 't', remoteAddress: '127.0.0.1', helo, tls: false, authenticated: false, sender, recipients: ['bob@example.org'], raw: Buffer.from(raw) };
    const result: DataResult = { reject: null, headers: [], junk: false, log: {} };
    await auth.data(ctx, result);
    return { result, ctx, header: result.headers.join('') };
  }

  it('SPF pass, iprev pass, one Authentication-Results with our authserv-id', async () => {
    const { result, header } = await check('alice@pass.test', message({ from: 'alice@pass.test', to: 'bob@example.org', subject: 'hi' }));
    assert.equal(result.reject, null);
    assert.equal(result.headers.length, 1);
    assert.match(header, /^Authentication-Results: mx\.postern\.test;\r\n/);
    assert.match(header, /spf=pass .*smtp\.mailfrom=alice@pass\.test/);
    assert.match(header, /iprev=pass policy\.iprev=127\.0\.0\.1 \(client\.pass\.test\)/);
    assert.match(header, /spf=none smtp\.helo=client\.pass\.test/);
    assert.match(header, /\r\n$/);
  });

  it('SPF fail with nothing else vouching: 550 5.7.23', async () => {
    const { result } = await check('mallory@fail.test', message({ from: 'mallory@fail.test', to: 'bob@example.org', subject: 'x' }));
    assert.equal(result.reject?.code, 550);
    assert.equal(result.reject?.enhanced, '5.7.23');
    assert.equal((result.log.auth as Record<string, unknown>).spf, 'fail');
  });

  it('SPF softfail and permerror are reported, not enforced', async () => {
    const soft = await check('a@soft.test', message({ from: 'a@soft.test', to: 'bob@example.org', subject: 'x' }));
    assert.equal(soft.result.reject, null);
    assert.match(soft.header, /spf=softfail/);
    const perm = await check('a@perm.test', message({ from: 'a@perm.test', to: 'bob@example.org', subject: 'x' }));
    assert.equal(perm.result.reject, null);
    assert.match(perm.header, /spf=permerror/);
  });

  it('DKIM RSA good signature: dkim=pass, DMARC pass despite SPF fail (aligned DKIM)', async () => {
    const raw = await sign(message({ from: 'ceo@reject.test', to: 'bob@example.org', subject: 'signed' }), 'reject.test', 'sel', rsa);
    const { result, header } = await check('ceo@reject.test', raw);
    assert.equal(result.reject, null, header);
    assert.match(header, /dkim=pass header\.i=@reject\.test header\.s=sel header\.a=rsa-sha256/);
    assert.match(header, /dmarc=pass/);
    assert.equal(result.junk, false);
  });

  it('DKIM bad signature (body changed) with DMARC p=reject: dkim=fail and 550 5.7.1', async () => {
    const raw = (await sign(message({ from: 'ceo@reject.test', to: 'bob@example.org', subject: 'signed' }), 'reject.test', 'sel', rsa)).replace('Hello there.', 'Hello THERE.');
    const { result } = await check('ceo@reject.test', raw);
    assert.equal(result.reject?.code, 550);
    assert.equal(result.reject?.enhanced, '5.7.1');
    const log = result.log.auth as Record<string, unknown>;
    // mailauth reports a body hash mismatch as "neutral" (RFC 6376 3.9 leaves the label to the verifier); never pass.
    assert.match(String((log.dkim as string[])[0]), /^(fail|neutral):reject\.test$/);
    assert.equal(log.dmarc, 'fail:p=reject');
  });

  it('DKIM Ed25519 (RFC 8463) good signature passes', async () => {
    const raw = await sign(message({ from: 'x@none.test', to: 'bob@example.org', subject: 'ed' }), 'none.test', 'ed', ed);
    const { result, header } = await check('x@none.test', raw);
    assert.equal(result.reject, null);
    assert.match(header, /dkim=pass header\.i=@none\.test header\.s=ed header\.a=ed25519-sha256/);
    assert.match(header, /dmarc=pass/);
  });

  it('DMARC quarantine delivers to Junk; DMARC none delivers normally', async () => {
    const q = await check('bounce@pass.test', message({ from: 'news@quar.test', to: 'bob@example.org', subject: 'q' }));
    assert.equal(q.result.reject, null);
    assert.equal(q.result.junk, true);
    assert.match(q.header, /dmarc=fail/);
    const n = await check('bounce@pass.test', message({ from: 'news@none.test', to: 'bob@example.org', subject: 'n' }));
    assert.equal(n.result.reject, null);
    assert.equal(n.result.junk, false);
    assert.match(n.header, /dmarc=fail/);
  });

  async function forwarded(listDomain: string): Promise<string> {
    // The original is DKIM-signed by reject.test; the list records that in its ARC-Authentication-Results,
    // then adds a footer (which breaks the DKIM signature) and seals the result.
    const original = await sign(message({ from: 'ceo@reject.test', to: `members@${listDomain}`, subject: 'via list' }), 'reject.test', 'sel', rsa);
    const modified = original.replace(/\r\n$/, '\r\n-- \r\nYou are subscribed to the list.\r\n');
    return seal(modified, listDomain, 'arc', list, `${listDomain}; dkim=pass header.d=reject.test header.s=sel; spf=pass smtp.mailfrom=reject.test; dmarc=pass header.from=reject.test`);
  }

  it('ARC: a valid chain from a trusted sealer overrides the DMARC failure of a list-modified message', async () => {
    const { result, header } = await check('bounces@lists.trusted.test', await forwarded('lists.trusted.test'));
    assert.equal(result.reject, null, JSON.stringify(result.log));
    assert.match(header, /arc=pass/);
    assert.match(header, /dmarc=fail \(not enforced: trusted ARC sealer lists\.trusted\.test\)/);
    assert.equal((result.log.auth as Record<string, unknown>).arcOverride, 'lists.trusted.test');
  });

  it('ARC: the same chain from an untrusted sealer does not override: 550', async () => {
    const { result } = await check('bounces@lists.other.test', await forwarded('lists.other.test'));
    assert.equal(result.reject?.code, 550);
    assert.equal((result.log.auth as Record<string, unknown>).arc, 'pass');
  });

  it('removes a forged Authentication-Results claiming our authserv-id, keeps others', async () => {
    const raw = message({
      from: 'alice@pass.test',
      to: 'bob@example.org',
      subject: 'forged',
      extraHeaders: ['Authentication-Results: mx.postern.test; dmarc=pass header.from=bank.test', 'Authentication-Results: (c) other.example;\r\n dkim=pass'],
    });
    const { ctx, result } = await check('alice@pass.test', raw);
    const text = ctx.raw.toString();
    assert.doesNotMatch(text, /dmarc=pass header\.from=bank\.test/);
    assert.match(text, /Authentication-Results: \(c\) other\.example;\r\n dkim=pass/);
    assert.equal((result.log.auth as Record<string, unknown>).forgedAuthResultsRemoved, 1);
    assert.equal(stripOwnAuthResults(Buffer.from('Subject: x\r\n\r\nAuthentication-Results: mx.postern.test; x\r\n'), HOST).removed, 0, 'body is not headers');
  });

  it('reverse names for iprev', () => {
    assert.equal(reverseName('192.0.2.1'), '1.2.0.192.in-addr.arpa');
    assert.equal(reverseName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  });
});
