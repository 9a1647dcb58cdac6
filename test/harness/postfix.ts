/**
 * A real Postfix (Debian's package) as a remote MX for interop tests, run from a config dir of the test's own:
 * `postfix -c DIR/etc start`, queue and data directories under the same temp dir, nothing written to /etc.
 *
 * - It listens on `host:25` only (a master.cf entry "HOST:smtp"). `inet_interfaces` cannot name 127.0.0.5:
 *   Postfix refuses an address that is not configured on an interface ("no local interface found"), and on
 *   Linux only 127.0.0.1 is (the rest of 127/8 is routed to lo without being an interface address). So
 *   inet_interfaces = loopback-only and the smtpd service binds the test address explicitly.
 * - smtpd TLS with a self-signed test certificate and `smtpd_tls_received_header = yes`, so the Received header
 *   it adds reports the protocol and cipher the client negotiated.
 * - Mail for the virtual domains is delivered into Maildirs under DIR/mail (virtual(8), as uid nobody).
 * - It never sends mail anywhere: no DNS, every non-local transport is `error:`, and no peer-name lookups.
 * - `maillog_file` = DIR/maillog (Postfix prints nothing without a terminal or syslog otherwise).
 * - chroot is off for every service (Debian's master.cf chroots most of them into the queue directory).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const POSTFIX_BIN = '/usr/sbin/postfix';

/** Why Postfix cannot run here, or null when it can. */
export function postfixMissing(): string | null {
  if (!existsSync(POSTFIX_BIN)) return `postfix is not installed (${POSTFIX_BIN} missing; .ci/run installs the Debian package)`;
  if (process.getuid?.() !== 0) return 'postfix needs root to start (it binds port 25 and drops to the postfix user)';
  return null;
}

export interface PostfixOptions {
  /** Loopback address for smtpd on port 25. */
  host: string;
  hostname: string;
  /** Virtual domain -> local parts that have a Maildir. */
  mailboxes: Record<string, string[]>;
}

const MASTER_CF = `# service type private unpriv chroot wakeup maxproc command
HOST:smtp inet n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

function sh(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export class Postfix {
  private constructor(
    readonly dir: string,
    readonly opts: PostfixOptions,
  ) {}

  get configDir(): string {
    return path.join(this.dir, 'etc');
  }

  static async start(opts: PostfixOptions): Promise<Postfix> {
    // A listener already there (a Postfix left by a killed run) would answer in place of ours.
    if (await listening(opts.host, 25))
      throw new Error(`something already listens on ${opts.host}:25 (a Postfix left by an earlier run? see \`ss -ltnp\`; stop it with \`postfix -c /tmp/postern-postfix-*/etc stop\`)`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-postfix-'));
    // The postfix user must be able to reach the queue directory below it.
    chmodSync(dir, 0o755);
    const etc = path.join(dir, 'etc');
    for (const d of ['etc', 'queue', 'data', 'mail']) mkdirSync(path.join(dir, d));
    const postfixUid = Number(execFileSync('id', ['-u', 'postfix']).toString().trim());
    const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString().trim());
    const nogroup = Number(execFileSync('id', ['-g', 'nobody']).toString().trim());
    chownSync(path.join(dir, 'data'), postfixUid, -1);
    chownSync(path.join(dir, 'mail'), nobody, nogroup);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(etc, 'key.pem'), '-out', path.join(etc, 'cert.pem'), '-days', '2', '-subj', `/CN=${opts.hostname}`], { stdio: 'pipe' });
    const vmailbox = Object.entries(opts.mailboxes)
      .flatMap(([domain, users]) => users.map((u) => `${u}@${domain} ${domain}/${u}/\n`))
      .join('');
    writeFileSync(path.join(etc, 'vmailbox'), vmailbox);
    const noOut = 'error:the test Postfix sends no mail';
    const main = `compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = ${opts.hostname}
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
default_transport = ${noOut}
relay_transport = ${noOut}
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP Postfix
smtpd_tls_cert_file = ${etc}/cert.pem
smtpd_tls_key_file = ${etc}/key.pem
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = ${Object.keys(opts.mailboxes).join(', ')}
virtual_mailbox_base = ${dir}/mail
virtual_mailbox_maps = texthash:${etc}/vmailbox
virtual_uid_maps = static:${nobody}
virtual_gid_maps = static:${nogroup}
virtual_minimum_uid = 100
`;
    writeFileSync(path.join(etc, 'main.cf'), main);
    writeFileSync(path.join(etc, 'master.cf'), MASTER_CF.replace('HOST', opts.host));
    const pf = new Postfix(dir, opts);
    const r = await sh(POSTFIX_BIN, ['-c', etc, 'start']);
    if (r.code !== 0) {
      const log = pf.log();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`postfix -c ${etc} start failed (${r.code}): ${r.out}\n${log}`);
    }
    // master binds before it forks the services; wait until smtpd answers.
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (await listening(opts.host, 25)) break;
      if (Date.now() > deadline) {
        await pf.stop();
        throw new Error(`postfix did not listen on ${opts.host}:25: ${pf.log()}`);
      }
      await new Promise((r2) => setTimeout(r2, 100));
    }
    return pf;
  }

  /** Postfix's log so far. */
  log(): string {
    try {
      return readFileSync(path.join(this.dir, 'maillog'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Messages delivered to a mailbox (the Maildir's new/ files), raw. */
  messages(address: string): string[] {
    const [local, domain] = address.split('@') as [string, string];
    const d = path.join(this.dir, 'mail', domain, local, 'new');
    if (!existsSync(d)) return [];
    return readdirSync(d)
      .sort()
      .map((f) => readFileSync(path.join(d, f), 'utf8'));
  }

  /** `postfix -c DIR stop`, waits for the master to exit, removes the directory. */
  async stop(): Promise<void> {
    let pid = 0;
    try {
      pid = Number(readFileSync(path.join(this.dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
    } catch {
      // not running
    }
    await sh(POSTFIX_BIN, ['-c', this.configDir, 'stop']);
    const deadline = Date.now() + 10_000;
    while (pid > 0 && Date.now() < deadline) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
