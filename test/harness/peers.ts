/**
 * Real content-filter peers for tests, started on loopback with private configuration and no network:
 * Redis, Rspamd (its own config dir, resolver pointed at our test DNS server, internet-fetching modules off)
 * and clamd (a one-signature EICAR database). See /work/shared/COMPONENTS.md for the traps these avoid.
 * Each start returns a handle whose stop() kills exactly the process it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './server.js';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

export interface Peer {
  port: number;
  dir: string;
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

function waitPort(port: number, child: ChildProcess, timeoutMs: number, what: string, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`${what} exited with ${child.exitCode}: ${log().slice(-2000)}`));
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`${what} did not listen on ${port} within ${timeoutMs} ms: ${log().slice(-2000)}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

function startProcess(cmd: string, args: string[], dir: string): { child: ChildProcess; log: () => string } {
  let out = '';
  const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  return { child, log: () => out };
}

function stopper(child: ChildProcess, dir: string, keepDir = false): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };
}

export async function startRedis(): Promise<Peer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-redis-'));
  const port = await freePort();
  const { child, log } = startProcess('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], dir);
  await waitPort(port, child, 10_000, 'redis-server', log);
  return { port, dir, child, log, stop: stopper(child, dir) };
}

/** Hyperscan databases compiled on Rspamd's first start (~12 s) are kept here across test runs. */
const RSPAMD_HS_CACHE = path.join(os.tmpdir(), 'postern-rspamd-hs-cache');

export interface RspamdPeer extends Peer {
  controllerPort: number;
  /** Base URLs for [spam] rspamd / rspamd_controller. */
  url: string;
  controllerUrl: string;
}

export async function startRspamd(opts: { dnsAddress: string; redisPort: number }): Promise<RspamdPeer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-rspamd-'));
  const [port, controllerPort, proxyPort] = [await freePort(), await freePort(), await freePort()];
  mkdirSync(RSPAMD_HS_CACHE, { recursive: true });
  const conf = path.join(dir, 'conf');
  for (const d of ['local.d', 'override.d', 'db', 'run', 'log']) mkdirSync(path.join(conf, d), { recursive: true });
  const files: Record<string, string> = {
    'override.d/worker-normal.inc': `bind_socket = "127.0.0.1:${port}";\ncount = 1;\n`,
    'override.d/worker-controller.inc': `bind_socket = "127.0.0.1:${controllerPort}";\ncount = 1;\nsecure_ip = "127.0.0.1";\n`,
    'override.d/worker-proxy.inc': `bind_socket = "127.0.0.1:${proxyPort}";\ncount = -1;\n`,
    'local.d/options.inc': `dns {\n  nameserver = ["${opts.dnsAddress}"];\n  timeout = 0.5s;\n  retransmits = 1;\n}\nhs_cache_dir = "${RSPAMD_HS_CACHE}/";\n`,
    'local.d/redis.conf': `servers = "127.0.0.1:${opts.redisPort}";\n`,
    'local.d/classifier-bayes.conf': `backend = "redis";\nservers = "127.0.0.1:${opts.redisPort}";\nmin_learns = 1;\n`,
    'local.d/logging.inc': `type = "file";\nlevel = "info";\n`,
    // Modules that only fetch from the internet (maps, URLs, update checks) are off: the tests are offline.
    ...Object.fromEntries(['rbl', 'phishing', 'multimap', 'fuzzy_check', 'asn', 'whitelist', 'rspamd_update', 'surbl', 'emails'].map((m) => [`local.d/${m}.conf`, 'enabled = false;\n'])),
  };
  for (const [f, text] of Object.entries(files)) writeFileSync(path.join(conf, f), text);
  const { child, log } = startProcess(
    'rspamd',
    ['-f', '-u', 'root', '-g', 'root', '-c', '/etc/rspamd/rspamd.conf', '--var', `LOCAL_CONFDIR=${conf}`, '--var', `DBDIR=${path.join(conf, 'db')}`, '--var', `RUNDIR=${path.join(conf, 'run')}`, '--var', `LOGDIR=${path.join(conf, 'log')}`],
    dir,
  );
  const fileLog = () => {
    const f = path.join(conf, 'log', 'rspamd.log');
    return log() + (existsSync(f) ? `\n--- ${f} ---\n${readFileSync(f, 'utf8').slice(-5000)}` : '');
  };
  // The first start compiles hyperscan databases (~12 s); later starts load them from RSPAMD_HS_CACHE.
  await waitPort(port, child, 90_000, 'rspamd', fileLog);
  await waitPort(controllerPort, child, 30_000, 'rspamd controller', fileLog);
  return {
    port,
    controllerPort,
    dir,
    child,
    url: `http://127.0.0.1:${port}`,
    controllerUrl: `http://127.0.0.1:${controllerPort}`,
    log: fileLog,
    stop: stopper(child, dir),
  };
}

export interface ClamdPeer extends Peer {
  /** For [virus] clamd. */
  address: string;
}

/** clamd with one body signature: the EICAR test string (found plain, base64-encoded and zipped). */
export async function startClamd(): Promise<ClamdPeer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-clamd-'));
  const port = await freePort();
  const db = path.join(dir, 'db');
  mkdirSync(db);
  writeFileSync(path.join(db, 'eicar.ndb'), `Eicar-Test-Signature:0:*:${Buffer.from(EICAR).toString('hex')}\n`);
  const conf = path.join(dir, 'clamd.conf');
  writeFileSync(
    conf,
    [`Foreground yes`, `DatabaseDirectory ${db}`, `TCPSocket ${port}`, `TCPAddr 127.0.0.1`, `LogFile ${path.join(dir, 'clamd.log')}`, `PidFile ${path.join(dir, 'clamd.pid')}`, `StreamMaxLength 30M`, `User root`].join('\n') + '\n',
  );
  const { child, log } = startProcess('clamd', ['-c', conf], dir);
  await waitPort(port, child, 30_000, 'clamd', log);
  return { port, dir, child, log, address: `127.0.0.1:${port}`, stop: stopper(child, dir) };
}
