/**
 * DNS lookups that report whether the answer is DNSSEC-validated, for DANE (RFC 7672): the query goes to the
 * configured resolver with RD, AD and EDNS DO set, and the answer counts as secure when the resolver sets AD
 * (RFC 6840 5.7: a validating resolver, trusted as such; Postfix's `smtp_dns_support_level = dnssec` works the
 * same way, and docs/operations.md says to run a local validating resolver such as unbound). UDP first, TCP when
 * the answer is truncated (RFC 7766). Pure library: imports nothing from src/.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';

export interface DnsServerAddress {
  host: string;
  port: number;
}

export interface SecureAnswer {
  /** The resolver vouched for the answer (AD set). */
  secure: boolean;
  /** NOERROR, NXDOMAIN, SERVFAIL, ... */
  rcode: string;
  answers: Answer[];
}

/** "host:port", "[v6]:port" or a bare address (port 53). */
export function parseServer(s: string): DnsServerAddress {
  const v6 = /^\[(.+)\]:(\d+)$/.exec(s);
  if (v6) return { host: v6[1]!, port: Number(v6[2]) };
  const hp = /^([^:]+):(\d+)$/.exec(s);
  if (hp) return { host: hp[1]!, port: Number(hp[2]) };
  return { host: s, port: 53 };
}

function query(name: string, type: 'MX' | 'TLSA'): { id: number; buf: Buffer } {
  const id = Math.floor(Math.random() * 65536);
  const buf = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
    questions: [{ type, name }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK } as never],
  });
  return { id, buf };
}

function answerOf(res: dnsPacket.DecodedPacket): SecureAnswer {
  return { secure: ((res.flags ?? 0) & dnsPacket.AUTHENTIC_DATA) !== 0, rcode: (res as { rcode?: string }).rcode ?? 'NOERROR', answers: res.answers ?? [] };
}

/** One query, UDP then TCP if truncated; rejects on timeout. */
export async function querySecure(server: DnsServerAddress, name: string, type: 'MX' | 'TLSA', timeoutMs = 5000): Promise<SecureAnswer> {
  const q = query(name, type);
  const udp = await new Promise<dnsPacket.DecodedPacket>((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`${type} ${name}: no answer from ${server.host}:${server.port}`));
    }, timeoutMs);
    sock.on('message', (msg) => {
      let res: dnsPacket.DecodedPacket;
      try {
        res = dnsPacket.decode(msg);
      } catch {
        return;
      }
      if (res.id !== q.id) return;
      clearTimeout(timer);
      sock.close();
      resolve(res);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.send(q.buf, server.port, server.host);
  });
  if (!((udp.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE)) return answerOf(udp);
  return answerOf(
    await new Promise<dnsPacket.DecodedPacket>((resolve, reject) => {
      const sock = net.connect({ host: server.host, port: server.port });
      const timer = setTimeout(() => sock.destroy(new Error(`${type} ${name}: no TCP answer from ${server.host}:${server.port}`)), timeoutMs);
      let buf = Buffer.alloc(0);
      // RFC 1035 4.2.2: the same message, after a two-byte length.
      sock.on('connect', () => sock.write(Buffer.concat([Buffer.from([q.buf.length >> 8, q.buf.length & 0xff]), q.buf])));
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          clearTimeout(timer);
          sock.destroy();
          resolve(dnsPacket.streamDecode(buf) as dnsPacket.DecodedPacket);
        }
      });
      sock.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    }),
  );
}
