/**
 * A small authoritative DNS server for tests, serving zone data the test supplies, on UDP and
 * TCP at the same port on a loopback address (RFC 1035 4.2: UDP and TCP on one port).
 *
 * Behaviour, and why:
 * - All data is one authoritative namespace (AA set). A name exists if it has records, was
 *   set() with an empty list, or is an empty non-terminal (a descendant exists): an absent name
 *   gets NXDOMAIN, an existing name without the asked type gets NOERROR with an empty answer
 *   (NODATA). Both carry an SOA in the authority section (RFC 2308 2.1, 2.2, 3), the closest
 *   enclosing SOA from the data or else a synthesised one for the last two labels, with TTL
 *   min(SOA TTL, SOA minimum) (RFC 2308 3, 5). Empty non-terminals are NODATA (RFC 8020).
 * - The rcode goes into the low 4 bits of `flags`: dns-packet ignores an `rcode` field.
 * - CNAME (RFC 1034 3.6.2, 4.3.2 step 3a): for any other type the CNAME goes into the answer
 *   and the target is looked up again in the same data; the rcode is that of the last name in
 *   the chain (RFC 6604 2.1). A loop is SERVFAIL.
 * - Wildcards `*.parent` apply below the closest encloser only (RFC 4592 3.3.1).
 * - UDP answers are limited to 512 bytes (RFC 1035 4.2.1), or to the EDNS size the query
 *   advertises (RFC 6891 6.2.3-6.2.5) capped by `udpMaxSize`; a larger answer is sent as a
 *   header and question with TC set (RFC 2181 9), and the full answer is served over TCP with a
 *   two-byte length prefix (RFC 1035 4.2.2, RFC 7766 8), several queries per connection.
 * - Failures on demand: 'servfail' (rcode 2), 'refused' (rcode 5), or 'timeout' (no answer at
 *   all, on either transport), per name and optionally per type.
 * - Every question is logged in `queries` with its transport and outcome.
 * - TXT strings longer than 255 bytes are split into 255-byte character-strings (RFC 1035
 *   3.3.14, RFC 7208 3.3), which is what publishing a long SPF or DKIM record means.
 * No module state: each startDnsServer call is independent.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question, RecordType, SoaData } from 'dns-packet';
import { ipToBytes } from '../../src/net/cidr.js';

export type RecordSpec = (
  | { type: 'A'; data: string }
  | { type: 'AAAA'; data: string }
  | { type: 'MX'; data: { preference: number; exchange: string } }
  /** A string or Buffer is one TXT record; an array is one record of several strings. */
  | { type: 'TXT'; data: string | Buffer | Array<string | Buffer> }
  | { type: 'PTR'; data: string }
  | { type: 'CNAME'; data: string }
  | { type: 'NS'; data: string }
  | { type: 'SOA'; data: SoaData }
  | { type: 'TLSA'; data: { usage: number; selector: number; matchingType: number; certificate: Buffer } }
  | { type: 'SRV'; data: { priority: number; weight: number; port: number; target: string } }
  | { type: 'CAA'; data: { flags?: number; tag: 'issue' | 'issuewild' | 'iodef'; value: string } }
) & { ttl?: number };

export type FailureMode = 'servfail' | 'refused' | 'timeout';

export interface QueryLogEntry {
  /** The name as asked (case preserved, no trailing dot). */
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
  /** The EDNS UDP payload size the query advertised, if it had an OPT record. */
  ednsSize?: number;
  /** The rcode we answered with, or 'none' for a simulated timeout. */
  rcode: string;
  /** Whether the UDP answer was truncated (TC set). */
  truncated: boolean;
}

export interface DnsServerOptions {
  /** Loopback address to bind; default 127.0.0.1. */
  host?: string;
  /** Port for both UDP and TCP; default an ephemeral port free on both. */
  port?: number;
  records?: Record<string, RecordSpec[]>;
  failures?: Record<string, FailureMode>;
  /** TTL for records without one; default 300. */
  defaultTtl?: number;
  /** Largest UDP answer we send whatever the client's EDNS size; default 1232 (DNS flag day 2020). */
  udpMaxSize?: number;
}

export interface DnsServer {
  readonly host: string;
  readonly port: number;
  /** "127.0.0.1:PORT" (or "[::1]:PORT"), for Resolver.setServers. */
  readonly address: string;
  /** Log of questions received, oldest first; clear it with `queries.length = 0`. */
  readonly queries: QueryLogEntry[];
  /** Replace the records of a name; an empty list makes the name exist with no data. */
  set(name: string, records: RecordSpec[]): void;
  /** Append records to a name. */
  add(name: string, ...records: RecordSpec[]): void;
  /** Make the name absent (NXDOMAIN unless a descendant still exists). */
  remove(name: string): void;
  /**
   * Answers for names at or under `suffix` carry AD (authenticated data, RFC 4035 3.2.3) when the query sets AD
   * or DO: the server then plays a DNSSEC-validating resolver for that zone (DANE tests).
   */
  secure(suffix: string): void;
  /** Make queries for the name (optionally only of one type) fail. */
  fail(name: string, mode: FailureMode, opts?: { type?: RecordType }): void;
  /** Answer the name normally again. */
  unfail(name: string): void;
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type RcodeName = keyof typeof RCODE;
const RCODE_NAMES = Object.fromEntries(Object.entries(RCODE).map(([k, v]) => [v, k])) as Record<
  number,
  RcodeName
>;

/** The reverse-lookup name for an address (RFC 1035 3.5 in-addr.arpa, RFC 3596 2.5 ip6.arpa). */
export function ptrName(ip: string): string {
  if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  const bytes = ipToBytes(ip);
  if (bytes === null) throw new Error(`not an IP address: ${ip}`);
  const nibbles = Buffer.from(bytes).toString('hex').split('').reverse().join('.');
  return `${nibbles}.ip6.arpa`;
}

export async function startDnsServer(opts: DnsServerOptions = {}): Promise<DnsServer> {
  const host = opts.host ?? '127.0.0.1';
  const defaultTtl = opts.defaultTtl ?? 300;
  const udpMaxSize = Math.max(512, opts.udpMaxSize ?? 1232);
  const zone = new Map<string, RecordSpec[]>();
  const failures = new Map<string, { mode: FailureMode; type?: string }>();
  const secureZones = new Set<string>();
  const isSecure = (name: string) => {
    const n = norm(name);
    return [...secureZones].some((z) => n === z || n.endsWith(`.${z}`));
  };
  for (const [name, records] of Object.entries(opts.records ?? {})) zone.set(norm(name), [...records]);
  for (const [name, mode] of Object.entries(opts.failures ?? {})) failures.set(norm(name), { mode });
  const queries: QueryLogEntry[] = [];
  const { udp, tcp, port } = await bindBoth(host, opts.port);
  const tcpSockets = new Set<net.Socket>();

  /** Build the reply to one raw query, or null for "do not answer". */
  function handle(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      // RFC 1035 4.1.1: FORMERR, if there is at least a header to answer to.
      if (msg.length < 12) return null;
      return encodeHeaderOnly(msg.readUInt16BE(0), RCODE.FORMERR);
    }
    if (query.type === 'response') return null;
    const id = query.id ?? 0;
    const opt = query.additionals?.find((a): a is Extract<Answer, { type: 'OPT' }> => a.type === 'OPT');
    const ednsSize = opt ? Math.max(512, opt.udpPayloadSize) : undefined;
    const questions = query.questions ?? [];
    const opcode = ((query.flags ?? 0) >> 11) & 0xf;
    const q = questions[0];
    const log = (rcode: string, truncated = false): void => {
      if (!q) return;
      queries.push({
        name: q.name,
        type: q.type,
        transport,
        ...(ednsSize !== undefined ? { ednsSize } : {}),
        rcode,
        truncated,
      });
    };
    const reply = (rcode: number, sections: Partial<Pick<Packet, 'answers' | 'authorities'>> = {}): Buffer => {
      const packet: Packet = {
        type: 'response',
        id,
        // AA; RD copied from the query (RFC 1035 4.1.1); opcode echoed; rcode in the low bits.
        flags:
          dnsPacket.AUTHORITATIVE_ANSWER |
          ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) |
          (q && isSecure(q.name) && (((query.flags ?? 0) & dnsPacket.AUTHENTIC_DATA) || (opt && (opt.flags ?? 0) & dnsPacket.DNSSEC_OK)) ? dnsPacket.AUTHENTIC_DATA : 0) |
          (opcode << 11) |
          rcode,
        questions,
        answers: sections.answers ?? [],
        authorities: sections.authorities ?? [],
        additionals: opt ? [ednsOpt()] : [],
      };
      let out = dnsPacket.encode(packet);
      let truncated = false;
      const limit = Math.min(udpMaxSize, ednsSize ?? 512);
      if (transport === 'udp' && out.length > limit) {
        // RFC 2181 9: set TC rather than send a partial RRset; the client retries over TCP.
        truncated = true;
        out = dnsPacket.encode({
          ...packet,
          flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
          answers: [],
          authorities: [],
        });
      }
      log(RCODE_NAMES[rcode] ?? String(rcode), truncated);
      return out;
    };

    if (opcode !== 0) return reply(RCODE.NOTIMP);
    if (!q || questions.length !== 1) return reply(RCODE.FORMERR);
    if ((q.class ?? 'IN') !== 'IN') return reply(RCODE.REFUSED);

    const failure = failures.get(norm(q.name));
    if (failure && (failure.type === undefined || failure.type === q.type)) {
      if (failure.mode === 'timeout') {
        log('none');
        return null;
      }
      return reply(failure.mode === 'servfail' ? RCODE.SERVFAIL : RCODE.REFUSED);
    }
    const r = resolve(q);
    return reply(r.rcode, { answers: r.answers, authorities: r.authorities });
  }

  function resolve(q: Question): { rcode: number; answers: Answer[]; authorities: Answer[] } {
    const answers: Answer[] = [];
    const seen = new Set<string>();
    let owner = q.name;
    for (;;) {
      const key = norm(owner);
      if (seen.has(key)) return { rcode: RCODE.SERVFAIL, answers: [], authorities: [] };
      seen.add(key);
      const rrs = lookup(key);
      if (rrs === undefined) return { rcode: RCODE.NXDOMAIN, answers, authorities: [negativeSoa(key)] };
      const matching = (q.type as string) === 'ANY' ? rrs : rrs.filter((r) => r.type === q.type);
      if (matching.length > 0) {
        answers.push(...matching.map((r) => toAnswer(owner, r)));
        return { rcode: RCODE.NOERROR, answers, authorities: [] };
      }
      const cname = rrs.find((r): r is Extract<RecordSpec, { type: 'CNAME' }> => r.type === 'CNAME');
      if (cname && q.type !== 'CNAME') {
        answers.push(toAnswer(owner, cname));
        owner = cname.data.replace(/\.$/, '');
        continue;
      }
      // NODATA (RFC 2308 2.2): NOERROR, no answer for the type, SOA in authority.
      return { rcode: RCODE.NOERROR, answers, authorities: [negativeSoa(key)] };
    }
  }

  /** Records at a normalised name: the list (maybe empty) if it exists, else undefined. */
  function lookup(key: string): RecordSpec[] | undefined {
    const direct = zone.get(key);
    if (direct) return direct;
    if (hasDescendant(key)) return [];
    // RFC 4592 3.3.1: find the closest encloser, then only its "*" child applies.
    const labels = key.split('.');
    for (let i = 1; i <= labels.length; i++) {
      const ancestor = labels.slice(i).join('.');
      if (ancestor === '' || zone.has(ancestor) || hasDescendant(ancestor)) {
        return zone.get(ancestor === '' ? '*' : `*.${ancestor}`);
      }
    }
    return undefined;
  }

  function hasDescendant(key: string): boolean {
    const suffix = `.${key}`;
    for (const k of zone.keys()) if (k.endsWith(suffix)) return true;
    return false;
  }

  function negativeSoa(key: string): Answer {
    const labels = key.split('.');
    for (let i = 0; i < labels.length; i++) {
      const apex = labels.slice(i).join('.');
      const soa = zone.get(apex)?.find((r): r is Extract<RecordSpec, { type: 'SOA' }> => r.type === 'SOA');
      if (soa) {
        const ttl = Math.min(soa.ttl ?? defaultTtl, soa.data.minimum ?? defaultTtl);
        return { ...toAnswer(apex, soa), ttl } as Answer;
      }
    }
    const apex = labels.length <= 2 ? key : labels.slice(-2).join('.');
    return {
      type: 'SOA',
      name: apex || '.',
      ttl: 60,
      class: 'IN',
      data: {
        mname: `ns.${apex}`,
        rname: `hostmaster.${apex}`,
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 60,
      },
    };
  }

  function toAnswer(owner: string, r: RecordSpec): Answer {
    const data = r.type === 'TXT' ? splitTxt(r.data) : r.data;
    return { type: r.type, name: owner, ttl: r.ttl ?? defaultTtl, class: 'IN', data } as Answer;
  }

  udp.on('message', (msg, rinfo) => {
    const out = handle(msg, 'udp');
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  udp.on('error', () => {
    // A test server: a send to a vanished client is not our problem.
  });

  tcp.on('connection', (sock) => {
    tcpSockets.add(sock);
    sock.on('close', () => tcpSockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // RFC 1035 4.2.2: each message is preceded by its length as two bytes.
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const out = handle(msg, 'tcp');
        if (out) {
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(out.length);
          sock.write(Buffer.concat([prefix, out]));
        }
      }
    });
  });

  return {
    host,
    port,
    address: net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`,
    queries,
    secure(suffix) {
      secureZones.add(norm(suffix));
    },
    set(name, records) {
      zone.set(norm(name), [...records]);
    },
    add(name, ...records) {
      const key = norm(name);
      zone.set(key, [...(zone.get(key) ?? []), ...records]);
    },
    remove(name) {
      zone.delete(norm(name));
    },
    fail(name, mode, o) {
      failures.set(norm(name), o?.type ? { mode, type: o.type } : { mode });
    },
    unfail(name) {
      failures.delete(norm(name));
    },
    async close() {
      for (const s of tcpSockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
      ]);
    },
  };
}

// --- helpers -----------------------------------------------------------------------------------

/** Names compare case-insensitively (RFC 4343); the trailing root dot is optional. */
function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function ednsOpt(): Answer {
  // RFC 6891 6.1.2: our own UDP payload size in the CLASS field.
  return { type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}

function encodeHeaderOnly(id: number, rcode: number): Buffer {
  return dnsPacket.encode({ type: 'response', id, flags: rcode, questions: [], answers: [] });
}

/** RFC 1035 3.3.14: a TXT record is one or more character-strings of at most 255 bytes. */
function splitTxt(data: string | Buffer | Array<string | Buffer>): Buffer[] {
  const parts = Array.isArray(data) ? data : [data];
  const out: Buffer[] = [];
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    if (b.length === 0) out.push(b);
    for (let i = 0; i < b.length; i += 255) out.push(b.subarray(i, i + 255));
  }
  return out;
}

/** Bind UDP and TCP to the same port; with no port given, retry until an ephemeral port is free on both. */
async function bindBoth(
  host: string,
  port: number | undefined,
): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  const udpType = net.isIPv6(host) ? 'udp6' : 'udp4';
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket(udpType);
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port ?? 0, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const actual = udp.address().port;
    const tcp = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(actual, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      return { udp, tcp, port: actual };
    } catch (err) {
      await new Promise<void>((r) => udp.close(() => r()));
      if (port !== undefined || attempt >= 20 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}
