#!/usr/bin/env node
/**
 * The `postern` command line: args -> config -> app. Every failure prints one line to stderr and exits
 * non-zero; nothing here is imported by other modules.
 */
import { Command, CommanderError } from 'commander';
import { loadSettings, ConfigError, type Settings } from './config/load.js';
import { createLogger } from './log.js';
import { SqliteStore } from './storage/sqlite/store.js';
import { Admin, AdminError } from './cli/admin.js';
import { readPassword } from './cli/password.js';
import { importAccounts, importAliases, importDms, importQuotas, type ImportReport } from './cli/import-dms.js';
import { readFileSync } from 'node:fs';
import { BanAdmin } from './cli/bans.js';
import { OutboundAdmin } from './cli/outbound.js';
import { dkimKeys } from './app-outbound.js';

// More libuv threads: blob fsyncs and argon2 run there, and must not queue behind each other.
process.env.UV_THREADPOOL_SIZE ??= '16';

function fail(message: string, code = 1): never {
  process.stderr.write(`postern: ${message}\n`);
  process.exit(code);
}

function settingsFrom(cmd: Command): Settings {
  const opts = cmd.optsWithGlobals() as { config?: string };
  return loadSettings({ file: opts.config });
}

async function withAdmin<T>(cmd: Command, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const settings = settingsFrom(cmd);
  const store = new SqliteStore({ dataDir: settings.dataDir, inlineBlobMax: settings.inlineBlobMax, fsync: settings.fsync });
  try {
    return await fn(new Admin(store, { defaultQuota: settings.accounts.defaultQuota }));
  } finally {
    await store.close();
  }
}

async function start(cmd: Command): Promise<void> {
  const settings = settingsFrom(cmd);
  const log = createLogger(settings.logLevel);
  const { App } = await import('./app.js');
  const app = await App.create(settings, log);
  try {
    await app.start();
  } catch (err) {
    log.flush?.();
    await app.stop(0).catch(() => undefined);
    throw err;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new connections, sessions get up to 10 s to finish');
    app.stop(10_000).then(
      () => {
        log.flush?.();
        setTimeout(() => process.exit(0), 50).unref();
      },
      (err) => {
        log.error({ err: (err as Error).message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    let next: Settings;
    try {
      next = loadSettings({ file: settings.file ?? undefined });
    } catch (err) {
      log.error({ err: (err as Error).message }, 'SIGHUP: configuration not reloaded');
      return;
    }
    app.reload(next).catch((err) => log.error({ err: (err as Error).message }, 'SIGHUP: reload failed; previous configuration stays in effect'));
  });
}

async function withOutbound<T>(cmd: Command, fn: (admin: OutboundAdmin, settings: Settings) => Promise<T>): Promise<T> {
  const settings = settingsFrom(cmd);
  const store = new SqliteStore({ dataDir: settings.dataDir, inlineBlobMax: settings.inlineBlobMax, fsync: settings.fsync });
  try {
    return await fn(new OutboundAdmin(store), settings);
  } finally {
    await store.close();
  }
}

/** `postern queue|relay|dkim` (outbound delivery, issue 5). */
function addOutboundCommands(p: Command): void {
  const print = (x: string | string[]) => console.log(([] as string[]).concat(x).join('\n'));
  const queue = p.command('queue').description('the outbound queue');
  queue.command('list').description('list queued messages').action(async (_o, cmd: Command) => print(await withOutbound(cmd, (a) => a.queueList())));
  queue.command('show <id>').description('a queued message: recipients, last results, attempts').action(async (id: string, _o, cmd: Command) => print(await withOutbound(cmd, (a) => a.queueShow(id))));
  queue
    .command('retry [id]')
    .description('retry now: one message, or every message with --all')
    .option('--all', 'every queued message')
    .action(async (id: string | undefined, o: { all?: boolean }, cmd: Command) => {
      if (!id && !o.all) throw new AdminError('give a queue id or --all');
      print(await withOutbound(cmd, (a) => a.queueRetry(o.all ? null : id!)));
    });
  queue.command('delete <id>').description('remove a message from the queue without a bounce').action(async (id: string, _o, cmd: Command) => print(await withOutbound(cmd, (a) => a.queueDelete(id))));
  queue.command('hold <id>').description('stop delivery attempts for a message').action(async (id: string, _o, cmd: Command) => print(await withOutbound(cmd, (a) => a.queueHold(id))));
  queue.command('release <id>').description('resume delivery of a held message now').action(async (id: string, _o, cmd: Command) => print(await withOutbound(cmd, (a) => a.queueRelease(id))));

  const relay = p.command('relay').description('per-sender-domain relay hosts (as docker-mailserver\'s "setup relay")');
  relay.command('add-domain <domain> <host:port>').description('send mail from <domain> through a relay (465: implicit TLS, else STARTTLS)').action(async (d: string, h: string, _o, cmd: Command) => print(await withOutbound(cmd, (a) => a.relayAddDomain(d, h))));
  relay
    .command('add-auth <domain> <user> [password]')
    .description('credentials for the relay used by <domain> (password prompted, or read from stdin, when omitted)')
    .action(async (d: string, u: string, pw: string | undefined, _o, cmd: Command) => {
      const pass = pw ?? (await readPassword('Relay password: '));
      print(await withOutbound(cmd, (a) => a.relayAddAuth(d, u, pass)));
    });
  relay.command('exclude-domain <domain>').description('deliver mail from <domain> directly, not through [delivery] relay').action(async (d: string, _o, cmd: Command) => print(await withOutbound(cmd, (a) => a.relayExcludeDomain(d))));
  relay.command('list').description('list per-domain relay settings').action(async (_o, cmd: Command) => print(await withOutbound(cmd, (a) => a.relayList())));

  const dkim = p.command('dkim').description('DKIM keys (RFC 6376, RFC 8463)');
  dkim
    .command('generate [domain...]')
    .description('generate a signing key (default: for every local domain) and print the DNS TXT record to publish')
    .option('--selector <selector>', 'DKIM selector (default: rsaYYYYMM / edYYYYMM)')
    .option('--type <type>', 'rsa or ed25519', 'rsa')
    .option('--bits <bits>', 'RSA key size', '2048')
    .action(async (domains: string[], o: { selector?: string; type?: string; bits?: string }, cmd: Command) =>
      print(await withOutbound(cmd, (a, s) => a.dkimGenerate(dkimKeys(s.dataDir), domains, o))),
    );
}

function program(): Command {
  const p = new Command('postern')
    .description('Postern: a complete, secure-by-default mail server')
    .option('-c, --config <file>', 'configuration file (default: $POSTERN_CONFIG or ./postern.toml)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `postern: ${s.slice(7)}` : s) });

  p.command('start').description('run the server').action(async (_o, cmd: Command) => start(cmd));

  const email = p.command('email').description('manage accounts (as docker-mailserver\'s "setup email")');
  email
    .command('add <address> [password]')
    .description('create an account (password prompted, or read from stdin, when omitted)')
    .action(async (address: string, password: string | undefined, _o, cmd: Command) => {
      const pw = password ?? (await readPassword('Password: '));
      console.log(`created ${await withAdmin(cmd, (a) => a.addEmail(address, pw))}`);
    });
  email
    .command('update <address> [password]')
    .description('change an account\'s password')
    .action(async (address: string, password: string | undefined, _o, cmd: Command) => {
      const pw = password ?? (await readPassword('New password: '));
      console.log(`updated ${await withAdmin(cmd, (a) => a.updateEmail(address, pw))}`);
    });
  email
    .command('del <address>')
    .description('delete an account with its mailboxes and messages')
    .action(async (address: string, _o, cmd: Command) => console.log(`deleted ${await withAdmin(cmd, (a) => a.delEmail(address))}`));
  email
    .command('list')
    .description('list accounts with quota use and aliases')
    .action(async (_o, cmd: Command) => {
      for (const line of await withAdmin(cmd, (a) => a.listEmail())) console.log(line);
    });

  const alias = p.command('alias').description('manage aliases (catch-all: @domain)');
  alias
    .command('add <alias> <target>')
    .description('deliver mail for <alias> (or @domain) to <target>, local or external')
    .action(async (src: string, dst: string, _o, cmd: Command) => console.log(`added ${await withAdmin(cmd, (a) => a.addAlias(src, dst))}`));
  alias
    .command('del <alias> <target>')
    .description('remove one alias target')
    .action(async (src: string, dst: string, _o, cmd: Command) => console.log(`deleted ${await withAdmin(cmd, (a) => a.delAlias(src, dst))}`));
  alias
    .command('list')
    .description('list aliases')
    .action(async (_o, cmd: Command) => {
      for (const line of await withAdmin(cmd, (a) => a.listAlias())) console.log(line);
    });

  const quota = p.command('quota').description('manage mailbox quotas');
  quota
    .command('set <address> <size>')
    .description('set a quota, e.g. 500M or 2G')
    .action(async (address: string, size: string, _o, cmd: Command) => console.log(`quota ${await withAdmin(cmd, (a) => a.setQuota(address, size))}`));
  quota
    .command('del <address>')
    .description('remove a quota (unlimited)')
    .action(async (address: string, _o, cmd: Command) => console.log(`quota ${await withAdmin(cmd, (a) => a.delQuota(address))}`));

  // Migration from docker-mailserver: its config files, hashes kept (upgraded to argon2id at the next login).
  const report = async (cmd: Command, fn: (a: Admin) => Promise<ImportReport>) => {
    const r = await withAdmin(cmd, fn);
    for (const x of r.imported) console.log(`imported ${x}`);
    for (const x of r.skipped) console.log(`skipped ${x}`);
    for (const x of r.failed) process.stderr.write(`postern: ${x}\n`);
    console.log(`${r.imported.length} imported, ${r.skipped.length} skipped, ${r.failed.length} failed`);
    if (r.failed.length) process.exitCode = 1;
  };
  const readImport = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new AdminError(`cannot read ${file}: ${(err as Error).message}`);
    }
  };
  email
    .command('import <file>')
    .description('create accounts from docker-mailserver\'s postfix-accounts.cf (address|{SCHEME}hash)')
    .action(async (file: string, _o, cmd: Command) => report(cmd, (a) => importAccounts(a, readImport(file), file)));
  alias
    .command('import <file>')
    .description('add aliases from docker-mailserver\'s postfix-virtual.cf (alias target[,target])')
    .action(async (file: string, _o, cmd: Command) => report(cmd, (a) => importAliases(a, readImport(file), file)));
  quota
    .command('import <file>')
    .description('set quotas from docker-mailserver\'s dovecot-quotas.cf (address:size)')
    .action(async (file: string, _o, cmd: Command) => report(cmd, (a) => importQuotas(a, readImport(file), file)));
  p.command('import')
    .description('migrate from another server')
    .command('dms <config-dir>')
    .description('import accounts, aliases and quotas from a docker-mailserver config directory (docker-data/dms/config)')
    .action(async (dir: string, _o, cmd: Command) => report(cmd, (a) => importDms(a, dir)));

  const domain = p.command('domain').description('local domains (added automatically with accounts and aliases)');
  domain
    .command('list')
    .description('list local domains')
    .action(async (_o, cmd: Command) => {
      for (const line of await withAdmin(cmd, (a) => a.listDomains())) console.log(line);
    });

  addOutboundCommands(p);

  const ban = p.command('ban').description('brute-force bans (applied by the running server within a second)');
  const withBans = async <T>(cmd: Command, fn: (b: BanAdmin) => Promise<T>): Promise<T> => {
    const s = settingsFrom(cmd);
    const store = new SqliteStore({ dataDir: s.dataDir, inlineBlobMax: s.inlineBlobMax, fsync: s.fsync });
    try {
      return await fn(new BanAdmin(store.bans, { defaultBanTimeMs: s.protection.banTimeMs, exempt: s.protection.banExempt }));
    } finally {
      await store.close();
    }
  };
  ban.command('list').description('list banned addresses').action(async (_o, cmd: Command) => console.log((await withBans(cmd, (b) => b.list())).join('\n')));
  ban
    .command('add <ip>')
    .description('ban an address from every listener')
    .option('--time <duration>', 'how long, e.g. 30m, 1h, 7d (default: [protection] ban_time)')
    .action(async (ip: string, o: { time?: string }, cmd: Command) => console.log(await withBans(cmd, (b) => b.add(ip, o.time))));
  ban.command('del <ip>').description('lift a ban').action(async (ip: string, _o, cmd: Command) => console.log(await withBans(cmd, (b) => b.del(ip))));

  const config = p.command('config').description('configuration');
  config
    .command('check')
    .description('validate the configuration file and print the resolved settings')
    .action((_o, cmd: Command) => {
      const s = settingsFrom(cmd);
      console.log(JSON.stringify({ file: s.file, hostname: s.hostname, dataDir: s.dataDir, listeners: s.listeners, smtp: s.smtp }, null, 2));
    });
  return p;
}

async function main(): Promise<void> {
  const p = program();
  try {
    await p.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
      process.exit(err.exitCode || 1);
    }
    if (err instanceof ConfigError || err instanceof AdminError) fail(err.message, 1);
    const name = (err as Error).name;
    if (name === 'BindError') fail((err as Error).message, 1);
    fail((err as Error).message ?? String(err), 1);
  }
}

void main();
