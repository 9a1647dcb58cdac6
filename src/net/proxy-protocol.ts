/**
 * HAProxy PROXY protocol receiver, versions 1 (text) and 2 (binary), per
 * https://www.haproxy.org/download/1.8/doc/proxy-protocol.txt ("the spec" below:
 * 2.1 is version 1, 2.2 version 2, 2.2.x the v2 TLVs).
 *
 * Invariants:
 * - parseProxyHeader is pure: bytes in, a typed result, 'incomplete', or a thrown
 *   ProxyProtocolError. Bytes that cannot start a header (neither signature), a v1 line without
 *   CRLF within 107 bytes, or a v2 header with a bad version/command/family are refused without
 *   waiting for more. There is no fallback to plain traffic: spec 2 says the receiver must be
 *   configured for the protocol and must not guess whether a header is present (otherwise any
 *   client could forge its address).
 * - readProxyHeader consumes exactly the header: surplus bytes read in the same chunk are put
 *   back with socket.unshift, so the next consumer (the SMTP/IMAP session, or a TLSSocket
 *   wrapping this socket, whose first read drains the socket's buffer) sees them first.
 * - readProxyHeader never destroys the socket; on failure it rejects and the caller closes.
 * - Which peers may send a header at all is the caller's concern (a cidr.ts allow list).
 */
import type net from 'node:net';
import { bytesToIp, canonicalIp } from './cidr.js';

export type ProxyHeaderResult =
  | { remoteAddress: string; remotePort: number; localAddress: string; localPort: number }
  /** LOCAL (v2) or UNKNOWN (v1): use the real connection endpoints (spec 2.1, 2.2). */
  | { local: true };

export type ProxyProtocolErrorCode =
  /** Bytes that do not form a valid header. */
  | 'malformed'
  /** A well-formed header we do not accept (UNIX sockets, datagrams, UNSPEC with PROXY). */
  | 'unsupported'
  /** The peer closed or the socket failed before the header was complete. */
  | 'closed'
  /** No complete header within timeoutMs. */
  | 'timeout';

export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError';
  constructor(
    readonly code: ProxyProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Spec 2.1: "a 108-byte buffer is always enough to store all the line and a trailing zero". */
export const V1_MAX_LENGTH = 107;
/** Spec 2.2: the 12-byte signature that starts every v2 header. */
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_FIXED_LENGTH = 16;

/**
 * Parse a PROXY header at the start of `buf`. Returns the number of header bytes and the
 * result, or 'incomplete' if `buf` is a proper prefix of a header that may still be valid.
 * Throws ProxyProtocolError ('malformed' or 'unsupported') otherwise.
 */
export function parseProxyHeader(
  buf: Buffer,
): { consumed: number; result: ProxyHeaderResult } | 'incomplete' {
  if (buf.length === 0) return 'incomplete';
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  throw new ProxyProtocolError('malformed', 'not a PROXY protocol header');
}

// --- version 1 (spec 2.1) --------------------------------------------------------------------

function parseV1(buf: Buffer): { consumed: number; result: ProxyHeaderResult } | 'incomplete' {
  const n = Math.min(buf.length, V1_PREFIX.length);
  if (!buf.subarray(0, n).equals(V1_PREFIX.subarray(0, n))) {
    throw new ProxyProtocolError('malformed', 'not a PROXY protocol header');
  }
  // Scan only as far as the longest legal line; every byte must be printable US-ASCII or the
  // CR that ends the line, so that binary garbage fails early.
  const limit = Math.min(buf.length, V1_MAX_LENGTH);
  let cr = -1;
  for (let i = 0; i < limit; i++) {
    const c = buf[i]!;
    if (c === 0x0d) {
      cr = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) {
      throw new ProxyProtocolError('malformed', 'PROXY v1 header: invalid byte');
    }
  }
  if (cr < 0) {
    if (buf.length >= V1_MAX_LENGTH) {
      throw new ProxyProtocolError('malformed', `PROXY v1 header longer than ${V1_MAX_LENGTH} bytes`);
    }
    return 'incomplete';
  }
  if (cr + 1 >= buf.length) return 'incomplete';
  if (buf[cr + 1] !== 0x0a) throw new ProxyProtocolError('malformed', 'PROXY v1 header: CR without LF');
  const consumed = cr + 2;
  if (consumed > V1_MAX_LENGTH) {
    throw new ProxyProtocolError('malformed', `PROXY v1 header longer than ${V1_MAX_LENGTH} bytes`);
  }
  const line = buf.toString('latin1', 0, cr);
  const parts = line.split(' ');
  // Spec 2.1: "PROXY UNKNOWN" may be followed by anything up to the CRLF, which the receiver
  // ignores; the connection is then treated as local.
  if (parts[1] === 'UNKNOWN') return { consumed, result: { local: true } };
  // Exactly single spaces between exactly six fields.
  if (parts.length !== 6) throw new ProxyProtocolError('malformed', 'PROXY v1 header: wrong field count');
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  if (proto !== 'TCP4' && proto !== 'TCP6') {
    throw new ProxyProtocolError('malformed', 'PROXY v1 header: protocol must be TCP4, TCP6 or UNKNOWN');
  }
  const remoteAddress = v1Address(src, proto);
  const localAddress = v1Address(dst, proto);
  return {
    consumed,
    result: { remoteAddress, remotePort: v1Port(sport), localAddress, localPort: v1Port(dport) },
  };
}

function v1Address(text: string, proto: 'TCP4' | 'TCP6'): string {
  // TCP4: dotted quad; TCP6: any RFC 4291 text form; both returned canonical. No zone ids.
  const isV4 = /^[0-9.]+$/.test(text);
  const canonical = proto === 'TCP4' ? (isV4 ? canonicalIp(text) : null) : isV4 ? null : canonicalIp(text);
  if (canonical === null) {
    throw new ProxyProtocolError('malformed', `PROXY v1 header: bad ${proto} address`);
  }
  return canonical;
}

function v1Port(text: string): number {
  // Spec 2.1: a decimal number 0..65535; we refuse leading zeros and signs as the spec's
  // reference implementation does not emit them.
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text) || Number(text) > 65535) {
    throw new ProxyProtocolError('malformed', 'PROXY v1 header: bad port');
  }
  return Number(text);
}

// --- version 2 (spec 2.2) --------------------------------------------------------------------

function parseV2(buf: Buffer): { consumed: number; result: ProxyHeaderResult } | 'incomplete' {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  if (!buf.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))) {
    throw new ProxyProtocolError('malformed', 'not a PROXY protocol header');
  }
  if (buf.length < 13) return 'incomplete';
  // Spec 2.2, 13th byte: high nibble version (must be 2), low nibble command.
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError('malformed', 'PROXY v2 header: version is not 2');
  const command = verCmd & 0x0f;
  if (command > 1) throw new ProxyProtocolError('malformed', 'PROXY v2 header: unknown command');
  if (buf.length < 14) return 'incomplete';
  // 14th byte: high nibble address family, low nibble transport protocol.
  const famProto = buf[13]!;
  const family = famProto >> 4; // 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX
  const transport = famProto & 0x0f; // 0 UNSPEC, 1 STREAM, 2 DGRAM
  if (family > 3 || transport > 2) {
    throw new ProxyProtocolError('malformed', 'PROXY v2 header: unknown address family or protocol');
  }
  if (buf.length < V2_FIXED_LENGTH) return 'incomplete';
  // 15th-16th bytes: length of the rest of the header in network byte order.
  const length = buf.readUInt16BE(14);
  const addrLength = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  // Validate the declared length before waiting for the bytes it announces.
  if (command === 1 && length < addrLength) {
    throw new ProxyProtocolError('malformed', 'PROXY v2 header: length shorter than the address block');
  }
  const consumed = V2_FIXED_LENGTH + length;
  if (buf.length < consumed) return 'incomplete';

  // Spec 2.2: with LOCAL "the receiver must accept this connection as valid and must use the
  // real connection endpoints and discard the protocol block including the family".
  if (command === 0) return { consumed, result: { local: true } };

  if ((family !== 1 && family !== 2) || transport !== 1) {
    // UNSPEC (the spec leaves accepting it to us), UNIX and DGRAM mean nothing for a TCP
    // mail listener; refusing is the strict choice.
    throw new ProxyProtocolError(
      'unsupported',
      'PROXY v2 header: only TCP over IPv4 or IPv6 (INET/INET6 + STREAM) is accepted',
    );
  }
  const body = buf.subarray(V2_FIXED_LENGTH, consumed);
  const alen = family === 1 ? 4 : 16;
  const remoteAddress = bytesToIp(body.subarray(0, alen));
  const localAddress = bytesToIp(body.subarray(alen, 2 * alen));
  const remotePort = body.readUInt16BE(2 * alen);
  const localPort = body.readUInt16BE(2 * alen + 2);
  validateTlvs(body.subarray(addrLength));
  return { consumed, result: { remoteAddress, remotePort, localAddress, localPort } };
}

/**
 * Spec 2.2.1-2.2.7: the bytes after the address block are TLVs (type u8, length u16, value).
 * We use none of them, but we check that they tile the remaining length exactly, so that a
 * corrupted length is caught rather than silently skipped.
 */
function validateTlvs(tlvs: Buffer): void {
  let off = 0;
  while (off < tlvs.length) {
    if (off + 3 > tlvs.length) throw new ProxyProtocolError('malformed', 'PROXY v2 header: truncated TLV');
    const len = tlvs.readUInt16BE(off + 1);
    off += 3 + len;
    if (off > tlvs.length) throw new ProxyProtocolError('malformed', 'PROXY v2 header: TLV overruns header');
  }
}

// --- reading from a socket -------------------------------------------------------------------

/**
 * Read and parse the PROXY header that starts the stream, consuming exactly its bytes.
 * Call it before anything else reads from the socket (no 'data' listener, not flowing).
 * Rejects with ProxyProtocolError: 'malformed'/'unsupported' for a bad header, 'closed' when the
 * peer goes away first, 'timeout' after opts.timeoutMs.
 */
export function readProxyHeader(
  socket: net.Socket,
  opts: { timeoutMs: number },
): Promise<ProxyHeaderResult> {
  return new Promise<ProxyHeaderResult>((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;

    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
    };
    const fail = (err: ProxyProtocolError): void => {
      if (settled) return;
      cleanup();
      reject(err);
    };

    const onReadable = (): void => {
      if (settled) return;
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        let parsed: ReturnType<typeof parseProxyHeader>;
        try {
          parsed = parseProxyHeader(buffered);
        } catch (err) {
          fail(err instanceof ProxyProtocolError ? err : new ProxyProtocolError('malformed', String(err)));
          return;
        }
        if (parsed === 'incomplete') continue;
        cleanup();
        const surplus = buffered.subarray(parsed.consumed);
        if (surplus.length > 0) socket.unshift(surplus);
        resolve(parsed.result);
        return;
      }
    };
    const onEnd = (): void => fail(new ProxyProtocolError('closed', 'connection closed before the PROXY header'));
    const onClose = (): void => fail(new ProxyProtocolError('closed', 'connection closed before the PROXY header'));
    const onError = (err: Error): void =>
      fail(new ProxyProtocolError('closed', `socket error before the PROXY header: ${err.message}`));

    const timer = setTimeout(
      () => fail(new ProxyProtocolError('timeout', `no PROXY header within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    if (socket.destroyed || socket.readableEnded) {
      fail(new ProxyProtocolError('closed', 'connection closed before the PROXY header'));
      return;
    }
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onClose);
    socket.once('error', onError);
    // Bytes may already be buffered (the listener ran late): look at them now.
    if (socket.readableLength > 0) onReadable();
  });
}
