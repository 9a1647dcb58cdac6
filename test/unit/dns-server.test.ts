import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { promises as dnsPromises } from 'node:dns';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, RecordType } from 'dns-packet';
import { ptrName, startDnsServer, type DnsServer, type RecordSpec } from '../harness/dns-server.js';

const LONG_SPF = `v=spf1 ${Array.from({ length: 40 }, (_, i) => `ip4:192.0.2.${i}`).join(' ')} -all`;
const BIG_TXT_SET: RecordSpec[] = Array.from({ length: 30 }, (_, i) => ({
  type: 'TXT' as const,
  data: `record-${String(i).padStart(2, '0')}-${'x'.repeat(180)}`,
}));
const TLSA_CERT = Buffer.from('a'.repeat(64), 'hex');

let dns: DnsServer;

before(async () => {
  dns = await startDnsServer({
    records: {
      'example.test': [
        {
          type: 'SOA',
          ttl: 3600,
          data: { mname: 'ns1.example.test', rname: 'hostmaster.example.test', serial: 7, minimum: 30 },
        },
        { type: 'NS', data: 'ns1.example.test' },
        { type: 'MX', data: { preference: 10, exchange: 'mx1.example.test' } },
        { type: 'MX', data: { preference: 20, exchange: 'mx2.example.test' } },
        { type: 'TXT', data: LONG_SPF },
      ],
      'MX1.Example.Test.': [{ type: 'A', data: '127.0.0.2' }, { type: 'AAAA', data: '::1' }],
      'mx2.example.test': [{ type: 'A', data: '127.0.0.3' }],
      'alias.example.test': [{ type: 'CNAME', data: 'mx1.example.test' }],
      'alias2.example.test': [{ type: 'CNAME', data: 'alias.example.test.' }],
      'dangling.example.test': [{ type: 'CNAME', data: 'nowhere.example.test' }],
      'loop1.example.test': [{ type: 'CNAME', data: 'loop2.example.test' }],
      'loop2.example.test': [{ type: 'CNAME', data: 'loop1.example.test' }],
      'selector._domainkey.example.test': [{ type: 'TXT', data: ['v=DKIM1; k=rsa; ', 'p=MIIB'] }],
      'big.example.test': BIG_TXT_SET,
      '_25._tcp.mx1.example.test': [
        { type: 'TLSA', data: { usage: 3, selector: 1, matchingType: 1, certificate: TLSA_CERT } },
      ],
      '_submissions._tcp.example.test': [
        { type: 'SRV', data: { priority: 0, weight: 1, port: 465, target: 'mx1.example.test' } },
      ],
      '*.wild.example.test': [{ type: 'A', data: '127.0.0.9' }],
      'exists.wild.example.test': [{ type: 'TXT', data: 'not a wildcard' }],
      [ptrName('127.0.0.2')]: [{ type: 'PTR', data: 'mx1.example.test' }],
      [ptrName('2001:db8::25')]: [{ type: 'PTR', data: 'mx6.example.test' }],
      'other.test': [{ type: 'A', data: '127.0.0.4' }],
    },
  });
});

after(async () => {
  await dns?.close();
});

function resolver(opts: { timeout?: number; tries?: number } = {}): dnsPromises.Resolver {
  const r = new dnsPromises.Resolver({ timeout: opts.timeout ?? 2000, tries: opts.tries ?? 1 });
  r.setServers([dns.address]);
  return r;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, code);
    return true;
  });
}

/** Raw query over UDP, optionally with an EDNS OPT record; returns the decoded response. */
async function udpQuery(name: string, type: RecordType, opts: { edns?: number; raw?: Buffer } = {}): Promise<DecodedPacket> {
  const sock = dgram.createSocket('udp4');
  try {
    const q: Packet = {
      type: 'query',
      id: 4242,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name, class: 'IN' }],
      additionals:
        opts.edns !== undefined
          ? [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
          : [],
    };
    const reply = new Promise<Buffer>((resolve, reject) => {
      sock.once('message', resolve);
      sock.once('error', reject);
      setTimeout(() => reject(new Error('udp query timed out')), 2000).unref();
    });
    sock.send(opts.raw ?? dnsPacket.encode(q), dns.port, '127.0.0.1');
    return dnsPacket.decode(await reply);
  } finally {
    sock.close();
  }
}

/** Raw queries over one TCP connection (RFC 1035 4.2.2 framing), answered in order. */
async function tcpQueries(qs: Array<{ name: string; type: RecordType }>): Promise<DecodedPacket[]> {
  const sock = net.connect(dns.port, '127.0.0.1');
  try {
    const frames = qs.map((q, i) => {
      const body = dnsPacket.encode({ type: 'query', id: 100 + i, questions: [{ ...q, class: 'IN' }] });
      const len = Buffer.alloc(2);
      len.writeUInt16BE(body.length);
      return Buffer.concat([len, body]);
    });
    // Send all frames as one write, split at an awkward place, to exercise reassembly.
    const all = Buffer.concat(frames);
    sock.write(all.subarray(0, 5));
    setTimeout(() => sock.write(all.subarray(5)), 10);
    const out: DecodedPacket[] = [];
    let buf = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      sock.on('error', reject);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          out.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (out.length === qs.length) resolve();
      });
    });
    return out;
  } finally {
    sock.destroy();
  }
}

const rcodeOf = (p: DecodedPacket): number => (p.flags ?? 0) & 0xf;

test('MX, A, AAAA, NS, SOA, SRV through Node’s resolver', async () => {
  const r = resolver();
  const mx = await r.resolveMx('example.test');
  assert.deepEqual(
    mx.sort((a, b) => a.priority - b.priority),
    [
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
    ],
  );
  assert.deepEqual(await r.resolve4('mx1.example.test'), ['127.0.0.2']);
  assert.deepEqual(await r.resolve6('mx1.example.test'), ['::1']);
  // Keys are case-insensitive with an optional trailing dot; so are questions.
  assert.deepEqual(await r.resolve4('MX1.EXAMPLE.TEST.'), ['127.0.0.2']);
  assert.deepEqual(await r.resolveNs('example.test'), ['ns1.example.test']);
  const soa = await r.resolveSoa('example.test');
  assert.equal(soa.nsname, 'ns1.example.test');
  assert.equal(soa.serial, 7);
  assert.deepEqual(await r.resolveSrv('_submissions._tcp.example.test'), [
    { name: 'mx1.example.test', port: 465, priority: 0, weight: 1 },
  ]);
});

test('TXT: a record longer than 255 bytes is split into character-strings', async () => {
  const r = resolver();
  assert.ok(LONG_SPF.length > 510);
  const txt = await r.resolveTxt('example.test');
  assert.equal(txt.length, 1);
  const chunks = txt[0]!;
  assert.deepEqual(
    chunks.map((c) => c.length),
    [255, 255, LONG_SPF.length - 510],
  );
  assert.equal(chunks.join(''), LONG_SPF);
  assert.deepEqual(await r.resolveTxt('selector._domainkey.example.test'), [['v=DKIM1; k=rsa; ', 'p=MIIB']]);
});

test('TXT: a large answer is truncated over UDP and served in full over TCP', async () => {
  dns.queries.length = 0;
  const r = resolver();
  const txt = await r.resolveTxt('big.example.test');
  assert.deepEqual(
    txt.map((t) => t.join('')).sort(),
    BIG_TXT_SET.map((s) => s.data as string).sort(),
  );
  const log = dns.queries.filter((q) => q.name.toLowerCase() === 'big.example.test');
  assert.ok(
    log.some((q) => q.transport === 'udp' && q.truncated),
    `truncated UDP answer in ${JSON.stringify(log)}`,
  );
  assert.ok(log.some((q) => q.transport === 'tcp' && !q.truncated && q.rcode === 'NOERROR'));

  // Without EDNS the limit is 512 bytes (RFC 1035 4.2.1); with EDNS it is the advertised size,
  // capped at udpMaxSize.
  const plain = await udpQuery('example.test', 'TXT');
  assert.equal(plain.flag_tc, true);
  assert.equal(plain.answers?.length, 0);
  const edns = await udpQuery('example.test', 'TXT', { edns: 1232 });
  assert.equal(edns.flag_tc, false);
  assert.equal(edns.answers?.length, 1);
  assert.ok(edns.additionals?.some((a) => a.type === 'OPT'));
  const huge = await udpQuery('big.example.test', 'TXT', { edns: 65000 });
  assert.equal(huge.flag_tc, true, 'server cap (1232) applies even to a large EDNS size');
});

test('PTR: reverse lookups for IPv4 and IPv6', async () => {
  const r = resolver();
  assert.equal(ptrName('192.0.2.1'), '1.2.0.192.in-addr.arpa');
  assert.equal(
    ptrName('2001:db8::25'),
    '5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
  );
  assert.deepEqual(await r.reverse('127.0.0.2'), ['mx1.example.test']);
  assert.deepEqual(await r.resolvePtr('2.0.0.127.in-addr.arpa'), ['mx1.example.test']);
  assert.deepEqual(await r.reverse('2001:db8::25'), ['mx6.example.test']);
  await rejectsWith(r.reverse('127.0.0.99'), 'ENOTFOUND');
});

test('NXDOMAIN vs NODATA (RFC 2308), with the SOA in authority', async () => {
  const r = resolver();
  await rejectsWith(r.resolve4('nope.example.test'), 'ENOTFOUND');
  await rejectsWith(r.resolveMx('nope.example.test'), 'ENOTFOUND');
  await rejectsWith(r.resolve6('mx2.example.test'), 'ENODATA');
  await rejectsWith(r.resolveMx('mx1.example.test'), 'ENODATA');
  // An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
  await rejectsWith(r.resolveTxt('_domainkey.example.test'), 'ENODATA');
  await rejectsWith(r.resolveTxt('_tcp.mx1.example.test'), 'ENODATA');

  const nx = await udpQuery('nope.example.test', 'A');
  assert.equal(rcodeOf(nx), 3);
  assert.equal(nx.flag_aa, true);
  assert.equal(nx.flag_rd, true, 'RD copied from the query');
  assert.equal(nx.id, 4242);
  assert.equal(nx.answers?.length, 0);
  const soa = nx.authorities?.[0];
  assert.ok(soa && soa.type === 'SOA');
  assert.equal(soa.name, 'example.test');
  assert.equal(soa.ttl, 30, 'negative TTL is min(SOA TTL, minimum) (RFC 2308 3)');

  const nodata = await udpQuery('mx2.example.test', 'AAAA');
  assert.equal(rcodeOf(nodata), 0);
  assert.equal(nodata.answers?.length, 0);
  assert.equal(nodata.authorities?.[0]?.type, 'SOA');

  // Outside any SOA in the data a synthesised SOA is used.
  const other = await udpQuery('missing.other.test', 'A');
  assert.equal(rcodeOf(other), 3);
  assert.equal(other.authorities?.[0]?.name, 'other.test');
});

test('CNAME chains are followed within the data', async () => {
  const r = resolver();
  assert.deepEqual(await r.resolve4('alias2.example.test'), ['127.0.0.2']);
  assert.deepEqual(await r.resolveCname('alias.example.test'), ['mx1.example.test']);
  const chain = await udpQuery('alias2.example.test', 'AAAA');
  assert.deepEqual(
    chain.answers?.map((a) => [a.type, a.name]),
    [
      ['CNAME', 'alias2.example.test'],
      ['CNAME', 'alias.example.test'],
      ['AAAA', 'mx1.example.test'],
    ],
  );
  // Rcode of the last name in the chain (RFC 6604): NXDOMAIN for a dangling target.
  const dangling = await udpQuery('dangling.example.test', 'A');
  assert.equal(rcodeOf(dangling), 3);
  assert.equal(dangling.answers?.[0]?.type, 'CNAME');
  // NODATA at the target: NOERROR with the CNAME only.
  const noMx = await udpQuery('alias.example.test', 'MX');
  assert.equal(rcodeOf(noMx), 0);
  assert.deepEqual(noMx.answers?.map((a) => a.type), ['CNAME']);
  const loop = await udpQuery('loop1.example.test', 'A');
  assert.equal(rcodeOf(loop), 2);
});

test('wildcards apply below the closest encloser only (RFC 4592)', async () => {
  const r = resolver();
  assert.deepEqual(await r.resolve4('anything.wild.example.test'), ['127.0.0.9']);
  const synth = await udpQuery('Foo.wild.example.test', 'A');
  assert.equal(synth.answers?.[0]?.name, 'Foo.wild.example.test');
  // An existing name is not covered by the wildcard...
  await rejectsWith(r.resolve4('exists.wild.example.test'), 'ENODATA');
  // ...nor is a name below it, whose closest encloser is exists.wild.example.test.
  await rejectsWith(r.resolve4('x.exists.wild.example.test'), 'ENOTFOUND');
  // Two labels below the wildcard's parent still match (closest encloser wild.example.test).
  assert.deepEqual(await r.resolve4('a.b.wild.example.test'), ['127.0.0.9']);
});

test('TLSA over raw queries (Node 20 has no resolveTlsa), over UDP and TCP', async () => {
  const u = await udpQuery('_25._tcp.mx1.example.test', 'TLSA');
  const a = u.answers?.[0];
  assert.ok(a && a.type === 'TLSA');
  assert.deepEqual(
    { usage: a.data.usage, selector: a.data.selector, matchingType: a.data.matchingType },
    { usage: 3, selector: 1, matchingType: 1 },
  );
  assert.ok(Buffer.from(a.data.certificate).equals(TLSA_CERT));

  const [t1, t2, t3] = await tcpQueries([
    { name: '_25._tcp.mx1.example.test', type: 'TLSA' },
    { name: 'big.example.test', type: 'TXT' },
    { name: 'nope.example.test', type: 'A' },
  ]);
  assert.equal(t1!.id, 100);
  assert.equal(t1!.answers?.[0]?.type, 'TLSA');
  assert.equal(t2!.flag_tc, false);
  assert.equal(t2!.answers?.length, BIG_TXT_SET.length);
  assert.equal(rcodeOf(t3!), 3);
});

test('set, add, remove and the query log', async () => {
  const r = resolver();
  await rejectsWith(r.resolve4('new.example.test'), 'ENOTFOUND');
  dns.set('New.Example.Test.', [{ type: 'A', data: '127.0.0.5' }]);
  assert.deepEqual(await r.resolve4('new.example.test'), ['127.0.0.5']);
  dns.add('new.example.test', { type: 'A', data: '127.0.0.6', ttl: 5 });
  assert.deepEqual((await r.resolve4('new.example.test', { ttl: true })).map((x) => [x.address, x.ttl]).sort(), [
    ['127.0.0.5', 300],
    ['127.0.0.6', 5],
  ]);
  dns.set('new.example.test', []);
  await rejectsWith(r.resolve4('new.example.test'), 'ENODATA');
  dns.remove('new.example.test');
  dns.queries.length = 0;
  await rejectsWith(r.resolve4('new.example.test'), 'ENOTFOUND');
  assert.deepEqual(
    dns.queries.map((q) => ({ name: q.name, type: q.type, rcode: q.rcode })),
    [{ name: 'new.example.test', type: 'A', rcode: 'NXDOMAIN' }],
  );
});

test('failures on demand: SERVFAIL, REFUSED, timeout, per type', async () => {
  const r = resolver({ timeout: 150, tries: 1 });
  dns.fail('mx1.example.test', 'servfail');
  await rejectsWith(r.resolve4('mx1.example.test'), 'ESERVFAIL');
  dns.fail('mx1.example.test', 'refused');
  await rejectsWith(r.resolve4('mx1.example.test'), 'EREFUSED');
  dns.fail('mx1.example.test', 'timeout');
  dns.queries.length = 0;
  await rejectsWith(r.resolve4('mx1.example.test'), 'ETIMEOUT');
  assert.equal(dns.queries[0]?.rcode, 'none');
  dns.fail('mx1.example.test', 'servfail', { type: 'AAAA' });
  assert.deepEqual(await r.resolve4('mx1.example.test'), ['127.0.0.2']);
  await rejectsWith(r.resolve6('mx1.example.test'), 'ESERVFAIL');
  dns.unfail('mx1.example.test');
  assert.deepEqual(await r.resolve6('mx1.example.test'), ['::1']);

  // The option form at start-up, and a timeout over TCP too.
  const other = await startDnsServer({ failures: { 'slow.test': 'timeout' }, records: { 'slow.test': [] } });
  try {
    const sock = net.connect(other.port, '127.0.0.1');
    const body = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'slow.test' }] });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(body.length);
    sock.write(Buffer.concat([len, body]));
    let got = 0;
    sock.on('data', (d: Buffer) => (got += d.length));
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(got, 0);
    sock.destroy();
    assert.equal(other.queries[0]?.transport, 'tcp');
  } finally {
    await other.close();
  }
});

test('malformed and unsupported queries', async () => {
  // Garbage after a valid header id: FORMERR with the same id.
  const garbage = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0xff]);
  const formerr = await udpQuery('', 'A', { raw: garbage });
  assert.equal(formerr.id, 0x1234);
  assert.equal(rcodeOf(formerr), 1);
  // A non-QUERY opcode (NOTIFY = 4): NOTIMP.
  const notify = dnsPacket.encode({
    type: 'query',
    id: 9,
    flags: 4 << 11,
    questions: [{ type: 'SOA', name: 'example.test' }],
  });
  const notimp = await udpQuery('', 'A', { raw: notify });
  assert.equal(rcodeOf(notimp), 4);
});

test('a fixed port is used for both UDP and TCP', async () => {
  const probe = await startDnsServer();
  const port = probe.port;
  await probe.close();
  const fixed = await startDnsServer({ port, records: { 'x.test': [{ type: 'A', data: '127.0.0.7' }] } });
  try {
    assert.equal(fixed.port, port);
    const r = new dnsPromises.Resolver({ timeout: 1000, tries: 1 });
    r.setServers([fixed.address]);
    assert.deepEqual(await r.resolve4('x.test'), ['127.0.0.7']);
  } finally {
    await fixed.close();
  }
});
