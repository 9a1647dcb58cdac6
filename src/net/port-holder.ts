/**
 * "Address in use" diagnostics: which process holds a listening TCP socket on a port, so that
 * the startup error can say "port 25 is held by pid 812 (/usr/lib/postfix/sbin/master -w)"
 * instead of a bare EADDRINUSE.
 *
 * Linux only, read from procfs (proc(5)): /proc/net/tcp and /proc/net/tcp6 list sockets with
 * their inode, and /proc/<pid>/fd/<n> links to "socket:[<inode>]". Best effort and synchronous
 * (it runs once, on a failed listen): any error, another OS, or a holder whose /proc/<pid>/fd
 * we may not read (another user's process, without root) gives null. Never throws.
 */
import fs from 'node:fs';
import os from 'node:os';
import { bytesToIp, normalizedIpBytes } from './cidr.js';

/** TCP_LISTEN in the kernel's tcp_states.h, as printed in the "st" column. */
const TCP_LISTEN = 0x0a;

export interface ProcNetTcpEntry {
  /** Canonical local address; IPv4-mapped IPv6 stays in its mapped form. */
  localAddress: string;
  localPort: number;
  /** Kernel socket state ("st" column), 0x0A = LISTEN. */
  state: number;
  uid: number;
  inode: number;
}

/**
 * Parse the text of /proc/net/tcp or /proc/net/tcp6. Addresses there are hex words in the
 * host's byte order (one 32-bit word for IPv4, four for IPv6); ports are big-endian hex.
 * Lines that do not parse are skipped.
 */
export function parseProcNetTcp(
  text: string,
  endianness: 'LE' | 'BE' = os.endianness(),
): ProcNetTcpEntry[] {
  const out: ProcNetTcpEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(f[1]!);
    if (!m) continue;
    const hex = m[1]!;
    const bytes = new Uint8Array(hex.length / 2);
    for (let w = 0; w < hex.length / 8; w++) {
      for (let i = 0; i < 4; i++) {
        const byte = parseInt(hex.slice(w * 8 + i * 2, w * 8 + i * 2 + 2), 16);
        bytes[w * 4 + (endianness === 'LE' ? 3 - i : i)] = byte;
      }
    }
    const state = parseInt(f[3]!, 16);
    const uid = Number(f[7]);
    const inode = Number(f[9]);
    if (!Number.isFinite(state) || !Number.isInteger(uid) || !Number.isInteger(inode)) continue;
    out.push({ localAddress: bytesToIp(bytes), localPort: parseInt(m[2]!, 16), state, uid, inode });
  }
  return out;
}

/**
 * Whether a listener bound to `listenAddress` conflicts with binding `host`. `0.0.0.0` on
 * either side conflicts with every IPv4 address; `::` conflicts with everything, since a
 * dual-stack socket also takes the IPv4 port (Node's default for "::"); otherwise the addresses
 * must be equal, an IPv4 address being equal to its mapped IPv6 form. A `host` that is not an
 * IP literal (a name) matches any listener on the port.
 */
export function listenerMatches(listenAddress: string, host: string): boolean {
  const want = normalizedIpBytes(host);
  const have = normalizedIpBytes(listenAddress);
  if (want === null || have === null) return true;
  const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);
  // "::" (dual-stack unless IPV6_V6ONLY, which procfs does not show) overlaps everything.
  if (isZero(have) && have.length === 16) return true;
  if (isZero(want) && want.length === 16) return true;
  // "0.0.0.0" overlaps every IPv4 address and nothing IPv6.
  if (isZero(have)) return want.length === 4;
  if (isZero(want)) return have.length === 4;
  return have.length === want.length && have.every((b, i) => b === want[i]);
}

/**
 * Describe the process holding a listening TCP socket that conflicts with `host:port`, as
 * "pid 1234 (command line)", or null if there is none we can see or we cannot tell.
 */
export function describePortHolder(host: string, port: number): string | null {
  if (process.platform !== 'linux') return null;
  try {
    const inodes = new Set<number>();
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text: string;
      try {
        text = fs.readFileSync(file, 'latin1');
      } catch {
        continue; // tcp6 is absent when IPv6 is disabled
      }
      for (const e of parseProcNetTcp(text)) {
        if (e.state === TCP_LISTEN && e.localPort === port && e.inode !== 0 && listenerMatches(e.localAddress, host)) {
          inodes.add(e.inode);
        }
      }
    }
    if (inodes.size === 0) return null;
    const pid = findPidOwningSocket(inodes);
    return pid === null ? null : `pid ${pid} (${commandOf(pid)})`;
  } catch {
    return null;
  }
}

/** Scan /proc/<pid>/fd for a link to one of the socket inodes; ourselves first (cheap, common in tests). */
function findPidOwningSocket(inodes: Set<number>): number | null {
  const targets = new Set([...inodes].map((i) => `socket:[${i}]`));
  const pids = fs
    .readdirSync('/proc')
    .filter((d) => /^[0-9]+$/.test(d))
    .map(Number)
    .filter((p) => p !== process.pid);
  for (const pid of [process.pid, ...pids]) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read (EACCES)
    }
    for (const fd of fds) {
      try {
        if (targets.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) return pid;
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return null;
}

/** The command line (NUL-separated argv joined by spaces), else comm, else "unknown". */
function commandOf(pid: number): string {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    if (argv.length > 0) {
      const cmd = argv.join(' ');
      return cmd.length > 200 ? `${cmd.slice(0, 197)}...` : cmd;
    }
  } catch {
    // fall through to comm
  }
  try {
    const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    if (comm) return comm;
  } catch {
    // fall through
  }
  return 'unknown';
}
