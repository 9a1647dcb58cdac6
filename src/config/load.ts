/**
 * Loading configuration: TOML file -> environment overrides -> schema validation -> resolved settings.
 * Every failure is a ConfigError whose message is one line: file, line, key and reason.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { configSchema, type Config, type ListenerName } from './schema.js';
import { parseDuration, parseSize } from '../lib/size.js';
import { parseCidrList } from '../net/cidr.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ListenerSettings {
  name: ListenerName;
  enabled: boolean;
  addresses: { host: string; port: number }[];
  proxyProtocol: boolean;
  maxConnections: number;
  maxConnectionsPerIp: number;
  idleTimeoutMs: number;
}

/** The validated configuration with sizes in bytes and durations in milliseconds. */
export interface Settings {
  /** The file it came from, or null for the embedded defaults. */
  file: string | null;
  raw: Config;
  hostname: string;
  dataDir: string;
  /** [storage] inline_blob_max in bytes. */
  inlineBlobMax: number;
  /** [storage] fsync. */
  fsync: 'optimized' | 'always';
  logLevel: Config['log']['level'];
  tls: { cert?: string; key?: string; certificates: { cert: string; key: string }[]; minVersion: 'TLSv1.2' | 'TLSv1.3'; reloadIntervalMs: number };
  listeners: Record<ListenerName, ListenerSettings>;
  trustedProxies: string[];
  smtp: {
    maxMessageSize: number;
    relayNetworks: string[];
    maxRecipients: number;
    maxErrors: number;
    maxUnauthenticatedCommands: number;
    bannerDelayMs: number;
    rejectBareLf: boolean;
  };
  imap: { maxLineLength: number; maxLiteralSize: number; authIdleTimeoutMs: number; maxConnectionsPerAccount: number; maxCommandsPerSecond: number; plaintextAuthNetworks: string[] };
  accounts: { recipientDelimiter: string; defaultQuota: number; authFailureDelayMs: number; authFailureDelayMaxMs: number };
  /** [spam]: Rspamd URLs (null = not used), built-in scorer threshold. */
  spam: { rspamd: string | null; rspamdController: string | null; rspamdPassword: string | null; timeoutMs: number; threshold: number };
  /** [virus]: clamd address (null = no scan). */
  virus: { clamd: string | null; failOpen: boolean; timeoutMs: number };
  dns: { servers: string[] };
  protection: ProtectionSettings;
  delivery: DeliverySettings;
  queue: { lifetimeMs: number; delayWarningMs: number; retryBaseMs: number; retryMaxMs: number; pollIntervalMs: number };
}

/** [protection]: inbound checks on port 25 and brute-force bans. Durations in ms. */
export interface ProtectionSettings {
  enabled: boolean;
  greylisting: boolean;
  greylistDelayMs: number;
  greylistAutoAllowMs: number;
  greylistAllowDomains: string[];
  pregreetWaitMs: number;
  pregreetRememberMs: number;
  pipeliningCheck: boolean;
  heloChecks: boolean;
  dnsbl: string[];
  dnsblThreshold: number;
  dnsblCacheMs: number;
  arcTrustedSealers: string[];
  banAfterFailures: number;
  banWindowMs: number;
  banTimeMs: number;
  banExempt: string[];
  screenExempt: string[];
  rateLimitMessagesPerMinute: number;
  rateLimitConnectionsPerMinute: number;
  rateLimitRecipientsPerMinute: number;
}

/** A relay (smarthost): implicit TLS on 465 (smtps) or STARTTLS required (smtp+starttls). */
export interface RelaySettings {
  host: string;
  port: number;
  implicitTls: boolean;
  username: string | null;
  password: string | null;
}

export interface DeliverySettings {
  relay: RelaySettings | null;
  relayCaFile: string | null;
  /** Apply MTA-STS policies (RFC 8461) to direct delivery. */
  mtaSts: boolean;
  /** DANE (RFC 7672) for direct delivery. */
  dane: boolean;
  sourceIpv4: string | null;
  sourceIpv6: string | null;
  ipv6: boolean;
  port: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerDomain: number;
  maxMessagesPerConnection: number;
}

/** Parses a relay URL ("smtps://user:pass@host:465", "smtp+starttls://host:587"); credentials may be %-encoded. */
export function parseRelayUrl(url: string): RelaySettings {
  const m = /^(smtps|smtp\+starttls):\/\/(?:([^@/]+)@)?([^@/:]+)(?::(\d{1,5}))?\/?$/.exec(url);
  if (!m) throw new Error(`invalid relay "${url}"`);
  const implicitTls = m[1] === 'smtps';
  let username: string | null = null;
  let password: string | null = null;
  if (m[2]) {
    const i = m[2].indexOf(':');
    username = decodeURIComponent(i < 0 ? m[2] : m[2].slice(0, i));
    password = i < 0 ? null : decodeURIComponent(m[2].slice(i + 1));
  }
  const port = m[4] ? Number(m[4]) : implicitTls ? 465 : 587;
  if (port < 1 || port > 65535) throw new Error(`port out of range in "${url}"`);
  return { host: m[3]!.toLowerCase(), port, implicitTls, username, password };
}

function resolveRelay(url: string, credentialsFile: string | null): RelaySettings | null {
  if (!url) return null;
  const relay = parseRelayUrl(url);
  if (credentialsFile) {
    const line = readFileSync(credentialsFile, 'utf8').split(/\r?\n/)[0] ?? '';
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`${credentialsFile}: expected one line "user:password"`);
    relay.username = line.slice(0, i);
    relay.password = line.slice(i + 1);
  }
  return relay;
}

export interface LoadOptions {
  /** Explicit --config path; when absent, $POSTERN_CONFIG then ./postern.toml (optional). */
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Finds the line of `key` (a dotted path) in a TOML text, for error messages. 0 when not found. */
export function findKeyLine(text: string, keyPath: (string | number)[]): number {
  const names = keyPath.filter((k): k is string => typeof k === 'string');
  const lines = text.split(/\r?\n/);
  let table: string[] = [];
  let best = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const header = /^\[\[?\s*([^\]]+?)\s*\]\]?/.exec(line);
    if (header) {
      table = header[1]!.split('.').map((s) => s.trim().replace(/^"|"$/g, ''));
      if (table.join('.') === names.join('.')) best = best || i + 1;
      continue;
    }
    const kv = /^("?)([A-Za-z0-9_.-]+)\1\s*=/.exec(line);
    if (!kv) continue;
    const full = [...table, ...kv[2]!.split('.')];
    if (full.join('.') === names.slice(0, full.length).join('.') && full.length <= names.length) {
      if (full.length === names.length) return i + 1;
      best = i + 1;
    }
  }
  return best;
}

interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  anyOf?: JsonSchemaNode[];
  items?: JsonSchemaNode;
}

/** Applies POSTERN_<SECTION>_<KEY> (e.g. POSTERN_SMTP_MAX_MESSAGE_SIZE, POSTERN_LISTENERS_SMTP_ADDRESS) overrides. */
export function applyEnvOverrides(doc: Record<string, unknown>, env: NodeJS.ProcessEnv): string[] {
  const applied: string[] = [];
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const walk = (node: JsonSchemaNode, pathSoFar: string[]) => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const p = [...pathSoFar, key];
      if (child.properties) {
        walk(child, p);
        continue;
      }
      const envName = 'POSTERN_' + p.join('_').toUpperCase();
      const value = env[envName];
      if (value === undefined || envName === 'POSTERN_CONFIG') continue;
      let target = doc;
      for (const seg of pathSoFar) {
        if (typeof target[seg] !== 'object' || target[seg] === null) target[seg] = {};
        target = target[seg] as Record<string, unknown>;
      }
      target[key] = coerceEnv(value, child);
      applied.push(envName);
    }
  };
  walk(schema, []);
  return applied;
}

function typesOf(node: JsonSchemaNode): string[] {
  const t = node.type ? ([] as string[]).concat(node.type) : [];
  for (const alt of node.anyOf ?? []) t.push(...typesOf(alt));
  return t;
}

function coerceEnv(value: string, node: JsonSchemaNode): unknown {
  const types = typesOf(node);
  const v = value.trim();
  if (types.includes('array')) {
    if (v.startsWith('[')) {
      try {
        return JSON.parse(v);
      } catch {
        /* fall through to comma splitting */
      }
    }
    const list = v === '' ? [] : v.split(/[\s,]+/).filter(Boolean);
    return types.includes('string') && list.length === 1 ? list[0] : list;
  }
  if (types.includes('boolean') && /^(true|false|1|0|yes|no)$/i.test(v)) return /^(true|1|yes)$/i.test(v);
  if ((types.includes('integer') || types.includes('number')) && /^\d+$/.test(v) && !types.includes('string')) return Number(v);
  return value;
}

export function loadSettings(opts: LoadOptions = {}): Settings {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.file ?? env.POSTERN_CONFIG;
  const file = path.resolve(cwd, explicit ?? 'postern.toml');
  let text = '';
  let fromFile: string | null = null;
  try {
    text = readFileSync(file, 'utf8');
    fromFile = file;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (explicit || code !== 'ENOENT') throw new ConfigError(`${file}: cannot read configuration: ${(err as Error).message}`);
  }
  let doc: Record<string, unknown> = {};
  if (fromFile) {
    try {
      doc = parseToml(text) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof TomlError) {
        const reason = err.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
        throw new ConfigError(`${file}:${err.line}:${err.column}: TOML syntax error: ${reason}`);
      }
      throw err;
    }
  }
  applyEnvOverrides(doc, env);
  const result = configSchema.safeParse(doc);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issue.path.join('.') || '(top level)';
    const keyPath = [...(issue.path as (string | number)[]), ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]!] : [])];
    const line = fromFile ? findKeyLine(text, keyPath) : 0;
    const where = fromFile ? `${file}:${line || '?'}` : 'environment';
    let reason = issue.message;
    if (issue.code === 'unrecognized_keys') reason = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    throw new ConfigError(`${where}: key "${key}": ${reason}`);
  }
  try {
    return resolve(result.data, fromFile, cwd);
  } catch (err) {
    if (err instanceof ConfigError) {
      const m = /^key "([^"]+)"/.exec(err.message);
      const line = fromFile && m ? findKeyLine(text, m[1]!.split('.')) : 0;
      throw new ConfigError(`${fromFile ?? 'environment'}${fromFile ? `:${line || '?'}` : ''}: ${err.message}`);
    }
    throw err;
  }
}

function field<T>(key: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new ConfigError(`key "${key}": ${(err as Error).message}`);
  }
}

function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) throw new Error(`invalid address "${s}"`);
  const port = Number(m[2]);
  if (port < 0 || port > 65535) throw new Error(`port out of range in "${s}"`);
  return { host: m[1]!, port };
}

function resolve(c: Config, file: string | null, cwd: string): Settings {
  const listeners = {} as Record<ListenerName, ListenerSettings>;
  for (const name of Object.keys(c.listeners) as ListenerName[]) {
    const l = c.listeners[name];
    listeners[name] = {
      name,
      enabled: l.enabled,
      addresses: field(`listeners.${name}.address`, () => ([] as string[]).concat(l.address).map(parseHostPort)),
      proxyProtocol: l.proxy_protocol,
      maxConnections: l.max_connections,
      maxConnectionsPerIp: l.max_connections_per_ip,
      idleTimeoutMs: field(`listeners.${name}.idle_timeout`, () => parseDuration(l.idle_timeout)),
    };
  }
  const base = file ? path.dirname(file) : cwd;
  const rel = (p: string) => path.resolve(base, p);
  return {
    file,
    raw: c,
    hostname: (c.hostname ?? os.hostname()).toLowerCase(),
    dataDir: path.resolve(cwd, c.data_dir),
    fsync: c.storage.fsync,
    inlineBlobMax: field('storage.inline_blob_max', () => {
      const n = parseSize(c.storage.inline_blob_max);
      // Range reads of an inline body load the whole value (SQLite substr): keep it to sizes where that is cheap.
      if (n > 4 * 1024 * 1024) throw new Error('at most 4M (larger bodies are better kept as files)');
      return n;
    }),
    logLevel: c.log.level,
    tls: {
      cert: c.tls.cert ? rel(c.tls.cert) : undefined,
      key: c.tls.key ? rel(c.tls.key) : undefined,
      certificates: c.tls.certificates.map((x) => ({ cert: rel(x.cert), key: rel(x.key) })),
      minVersion: c.tls.min_version,
      reloadIntervalMs: field('tls.reload_interval', () => parseDuration(c.tls.reload_interval)),
    },
    listeners,
    trustedProxies: field('proxy.trusted_networks', () => (parseCidrList(c.proxy.trusted_networks), c.proxy.trusted_networks)),
    smtp: {
      maxMessageSize: field('smtp.max_message_size', () => parseSize(c.smtp.max_message_size)),
      relayNetworks: field('smtp.relay_networks', () => (parseCidrList(c.smtp.relay_networks), c.smtp.relay_networks)),
      maxRecipients: c.smtp.max_recipients,
      maxErrors: c.smtp.max_errors,
      maxUnauthenticatedCommands: c.smtp.max_unauthenticated_commands,
      bannerDelayMs: field('smtp.banner_delay', () => parseDuration(c.smtp.banner_delay)),
      rejectBareLf: c.smtp.reject_bare_lf,
    },
    imap: {
      maxLineLength: c.imap.max_line_length,
      maxLiteralSize: field('imap.max_literal_size', () => parseSize(c.imap.max_literal_size) || parseSize(c.smtp.max_message_size)),
      authIdleTimeoutMs: field('imap.authenticated_idle_timeout', () => parseDuration(c.imap.authenticated_idle_timeout)),
      maxConnectionsPerAccount: c.imap.max_connections_per_account,
      maxCommandsPerSecond: c.imap.max_commands_per_second,
      plaintextAuthNetworks: field('imap.plaintext_auth_networks', () => (parseCidrList(c.imap.plaintext_auth_networks), c.imap.plaintext_auth_networks)),
    },
    accounts: {
      recipientDelimiter: c.accounts.recipient_delimiter,
      defaultQuota: field('accounts.default_quota', () => parseSize(c.accounts.default_quota)),
      authFailureDelayMs: field('accounts.auth_failure_delay', () => parseDuration(c.accounts.auth_failure_delay)),
      authFailureDelayMaxMs: field('accounts.auth_failure_delay_max', () => parseDuration(c.accounts.auth_failure_delay_max)),
    },
    spam: {
      rspamd: c.spam.rspamd ? c.spam.rspamd.replace(/\/$/, '') : null,
      rspamdController: c.spam.rspamd_controller ? c.spam.rspamd_controller.replace(/\/$/, '') : null,
      rspamdPassword: c.spam.rspamd_password || null,
      timeoutMs: field('spam.timeout', () => parseDuration(c.spam.timeout)),
      threshold: c.spam.threshold,
    },
    virus: {
      clamd: c.virus.clamd || null,
      failOpen: c.virus.fail_open,
      timeoutMs: field('virus.timeout', () => parseDuration(c.virus.timeout)),
    },
    dns: { servers: c.dns.servers },
    protection: {
      enabled: c.protection.enabled,
      greylisting: c.protection.greylisting,
      greylistDelayMs: field('protection.greylist_delay', () => parseDuration(c.protection.greylist_delay)),
      greylistAutoAllowMs: field('protection.greylist_auto_allow', () => parseDuration(c.protection.greylist_auto_allow)),
      greylistAllowDomains: c.protection.greylist_allow_domains.map((d) => d.toLowerCase()),
      pregreetWaitMs: field('protection.pregreet_wait', () => parseDuration(c.protection.pregreet_wait)),
      pregreetRememberMs: field('protection.pregreet_remember', () => parseDuration(c.protection.pregreet_remember)),
      pipeliningCheck: c.protection.pipelining_check,
      heloChecks: c.protection.helo_checks,
      dnsbl: c.protection.dnsbl,
      dnsblThreshold: c.protection.dnsbl_threshold,
      dnsblCacheMs: field('protection.dnsbl_cache_time', () => parseDuration(c.protection.dnsbl_cache_time)),
      arcTrustedSealers: c.protection.arc_trusted_sealers.map((d) => d.toLowerCase()),
      banAfterFailures: c.protection.ban_after_failures,
      banWindowMs: field('protection.ban_window', () => parseDuration(c.protection.ban_window)),
      banTimeMs: field('protection.ban_time', () => parseDuration(c.protection.ban_time)),
      banExempt: field('protection.ban_exempt', () => (parseCidrList(c.protection.ban_exempt), c.protection.ban_exempt)),
      screenExempt: field('protection.screen_exempt', () => (parseCidrList(c.protection.screen_exempt), c.protection.screen_exempt)),
      rateLimitMessagesPerMinute: c.protection.rate_limit_messages_per_minute,
      rateLimitConnectionsPerMinute: c.protection.rate_limit_connections_per_minute,
      rateLimitRecipientsPerMinute: c.protection.rate_limit_recipients_per_minute,
    },
    delivery: {
      relay: field('delivery.relay', () => resolveRelay(c.delivery.relay, c.delivery.relay_credentials_file ? rel(c.delivery.relay_credentials_file) : null)),
      relayCaFile: c.delivery.relay_ca_file ? rel(c.delivery.relay_ca_file) : null,
      mtaSts: c.delivery.mta_sts,
      dane: c.delivery.dane,
      sourceIpv4: c.delivery.source_ipv4 || null,
      sourceIpv6: c.delivery.source_ipv6 || null,
      ipv6: c.delivery.ipv6,
      port: c.delivery.port,
      connectTimeoutMs: field('delivery.connect_timeout', () => parseDuration(c.delivery.connect_timeout)),
      commandTimeoutMs: field('delivery.command_timeout', () => parseDuration(c.delivery.command_timeout)),
      maxConnections: c.delivery.max_connections,
      maxConnectionsPerDomain: c.delivery.max_connections_per_domain,
      maxMessagesPerConnection: c.delivery.max_messages_per_connection,
    },
    queue: {
      lifetimeMs: field('queue.lifetime', () => parseDuration(c.queue.lifetime)),
      delayWarningMs: field('queue.delay_warning', () => (c.queue.delay_warning === '0' ? 0 : parseDuration(c.queue.delay_warning))),
      retryBaseMs: field('queue.retry_base', () => parseDuration(c.queue.retry_base)),
      retryMaxMs: field('queue.retry_max', () => parseDuration(c.queue.retry_max)),
      pollIntervalMs: field('queue.poll_interval', () => parseDuration(c.queue.poll_interval)),
    },
  };
}
