/**
 * The configuration schema: the single source of truth for every key, its default and its documentation.
 * docs/configuration.md is generated from this file (npm run docs:config); a test keeps them in sync.
 * Nothing here reads the environment or the file system.
 */
import { z } from 'zod';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected "host:port", e.g. "0.0.0.0:25" or "[::]:25"');
const size = z.union([z.string(), z.number().int().nonnegative()]);
const duration = z.union([z.string(), z.number().int().nonnegative()]);

function listener(port: number, enabled: boolean, purpose: string) {
  return z
    .strictObject({
      enabled: z.boolean().default(enabled).describe(`Serve this listener (${purpose}).`),
      address: z
        .union([hostPort, z.array(hostPort)])
        .default([`0.0.0.0:${port}`, `[::]:${port}`])
        .describe('One or more "host:port" to listen on, IPv4 and IPv6. A wildcard "[::]" that cannot be bound because the machine has no IPv6 is skipped with a warning.'),
      proxy_protocol: z
        .boolean()
        .default(false)
        .describe('Expect a HAProxy PROXY protocol header (v1 or v2) on every connection; accepted only from [proxy] trusted_networks.'),
      max_connections: z.number().int().positive().default(5000).describe('Maximum simultaneous connections on this listener.'),
      max_connections_per_ip: z.number().int().positive().default(20).describe('Maximum simultaneous connections from one client IP address.'),
      idle_timeout: duration.default('5m').describe('Close a connection that sends nothing for this long (IMAP uses at least 30 minutes once authenticated, RFC 9051 5.4).'),
    })
    .prefault({});
}

export const configSchema = z.strictObject({
  hostname: z
    .string()
    .regex(/^[A-Za-z0-9.-]+$/, 'expected a host name such as mail.example.org')
    .optional()
    .describe('Fully qualified host name used in banners, EHLO and Received headers. Default: the machine\'s host name.'),
  data_dir: z.string().default('data').describe('Directory for the SQLite database, message blobs, generated keys and certificates. Relative paths are relative to the working directory.'),
  storage: z
    .strictObject({
      inline_blob_max: size
        .default('128K')
        .describe(
          'Message bodies up to this size are stored inside the database, written in the same transaction (and made durable by the same sync) as the message, which is what lets one disk sync acknowledge a whole batch of messages; larger ones are files under data_dir/blobs. 0 = every body is a file. Changing it affects new messages only.',
        ),
      fsync: z
        .enum(['optimized', 'always'])
        .default('optimized')
        .describe(
          'When a write waits for the disk. "optimized" (as Dovecot\'s mail_fsync default): a new message (SMTP 250, APPEND), COPY and MOVE are answered only once on disk; flag changes (STORE) and EXPUNGE once written to the database log, which survives a crash of the process, and are synced within a second (a power cut can undo the last second of them, never lose a message). "always": every write is synced before its answer.',
        ),
    })
    .prefault({})
    .describe('Where message bodies are kept, and when writes wait for the disk.'),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Minimum level of the JSON log lines written to standard output.'),
    })
    .prefault({})
    .describe('Logging.'),
  tls: z
    .strictObject({
      cert: z.string().optional().describe('PEM certificate chain (leaf first). Absent together with key: a self-signed certificate for hostname is generated into data_dir/tls (clients will warn).'),
      key: z.string().optional().describe('PEM private key for cert.'),
      certificates: z
        .array(z.strictObject({ cert: z.string(), key: z.string() }))
        .default([])
        .describe('Extra certificates chosen by SNI: [[tls.certificates]] with cert and key; the names they serve are read from the certificate (subjectAltName).'),
      min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted (TLS 1.0 and 1.1 are never accepted).'),
      reload_interval: duration.default('30s').describe('How often certificate files are checked for changes (ACME renewal by an external tool); a change is loaded without a restart.'),
    })
    .prefault({})
    .describe('TLS for every listener and for STARTTLS.'),
  listeners: z
    .strictObject({
      smtp: listener(25, true, 'SMTP transfer: STARTTLS offered, never AUTH, mail for local domains only'),
      submissions: listener(465, true, 'submission over implicit TLS, AUTH required'),
      submission: listener(587, true, 'submission: STARTTLS required before AUTH and MAIL'),
      imap: listener(143, true, 'IMAP: STARTTLS required before login'),
      imaps: listener(993, true, 'IMAP over implicit TLS'),
      pop3: listener(110, false, 'POP3: STLS required before login'),
      pop3s: listener(995, false, 'POP3 over implicit TLS'),
    })
    .prefault({})
    .describe('Network listeners. The defaults are the standard port table.'),
  proxy: z
    .strictObject({
      trusted_networks: z.array(z.string()).default([]).describe('Networks (CIDR) allowed to send a PROXY protocol header; a header from elsewhere closes the connection.'),
    })
    .prefault({})
    .describe('PROXY protocol.'),
  smtp: z
    .strictObject({
      max_message_size: size.default('25M').describe('Largest message accepted (SIZE, RFC 1870); larger ones get 552 5.3.4.'),
      relay_networks: z
        .array(z.string())
        .default([])
        .describe('Networks (CIDR) allowed to relay to any domain without AUTH on port 25. Empty by default: no open relay behind a proxy or NAT.'),
      max_recipients: z.number().int().positive().default(100).describe('Recipients per message (RFC 5321 4.5.3.1.8 requires at least 100).'),
      max_errors: z.number().int().positive().default(10).describe('Rejected or unknown commands after which a session is closed with 421.'),
      max_unauthenticated_commands: z.number().int().positive().default(10).describe('Commands allowed on a submission listener before AUTH succeeds.'),
      banner_delay: duration.default('100ms').describe('Wait before the 220 banner; a client that talks first is refused (pregreet).'),
      reject_bare_lf: z
        .boolean()
        .default(true)
        .describe('Refuse messages containing a bare LF or bare CR (554 5.6.0), which closes SMTP smuggling. false normalises them to CRLF instead.'),
    })
    .prefault({})
    .describe('SMTP receiving on all SMTP listeners.'),
  imap: z
    .strictObject({
      max_line_length: z.number().int().min(8192).default(65536).describe('Longest IMAP command line in octets, literals excluded (RFC 9051 4 asks for at least 8000); longer lines get BAD [TOOBIG].'),
      max_literal_size: size.default(0).describe('Largest literal, hence largest APPENDed message (advertised as APPENDLIMIT, RFC 7889). 0 = [smtp] max_message_size.'),
      authenticated_idle_timeout: duration.default('30m').describe('Close an authenticated IMAP connection (also one in IDLE) that sends nothing for this long; RFC 9051 5.4 requires at least 30 minutes. Before login the listener idle_timeout applies.'),
      max_connections_per_account: z.number().int().positive().default(50).describe('Simultaneous IMAP connections of one account (both IMAP listeners together); more get NO [LIMIT] at login.'),
      max_commands_per_second: z.number().int().nonnegative().default(500).describe('Commands one IMAP connection may issue per second; more are slowed down, not refused. 0 = no limit.'),
      plaintext_auth_networks: z
        .array(z.string())
        .default([])
        .describe(
          'Client networks (CIDR) allowed to log in on port 143 without STARTTLS, e.g. ["127.0.0.1/32", "::1/128"] for a webmail on the same host (Dovecot treats local connections this way by default). Empty by default: everyone must use TLS first (LOGINDISABLED).',
        ),
    })
    .prefault({})
    .describe('IMAP on the imap (143) and imaps (993) listeners.'),
  accounts: z
    .strictObject({
      recipient_delimiter: z.string().max(8).default('+').describe('Characters that separate a subaddress: user+tag@domain delivers to user@domain. Empty disables subaddressing.'),
      default_quota: size.default(0).describe('Quota for new accounts (0 = unlimited).'),
      auth_failure_delay: duration.default('500ms').describe('Delay before a failed login answer; doubles with each further failure from the same IP.'),
      auth_failure_delay_max: duration.default('10s').describe('Upper bound of the growing failure delay.'),
    })
    .prefault({})
    .describe('Accounts, aliases and authentication.'),
  spam: z
    .strictObject({
      rspamd: z
        .string()
        .regex(/^$|^https?:\/\/[^\s/]+\/?$/, 'expected "http://127.0.0.1:11333"')
        .default('')
        .describe(
          'URL of an Rspamd normal worker, e.g. "http://127.0.0.1:11333": each message received on port 25 is checked with POST /checkv2 and Rspamd\'s action applies: reject -> 550 5.7.1, soft reject and greylist -> 451 4.7.1, add header / rewrite subject -> X-Spam headers and delivery to Junk, no action -> delivered. If Rspamd cannot be reached the built-in scorer decides instead. Empty: the built-in scorer only.',
        ),
      rspamd_controller: z
        .string()
        .regex(/^$|^https?:\/\/[^\s/]+\/?$/, 'expected "http://127.0.0.1:11334"')
        .default('')
        .describe('URL of the Rspamd controller worker, e.g. "http://127.0.0.1:11334": a message a user moves or copies into Junk over IMAP is learned as spam (/learnspam), one moved out of Junk (except to Trash) as ham (/learnham). Rspamd needs Redis for its statistics. Empty: no learning.'),
      rspamd_password: z.string().default('').describe('Password for the Rspamd controller (its `password` or `enable_password`); empty when the controller trusts this host (secure_ip).'),
      timeout: duration.default('20s').describe('Time allowed for one Rspamd check or learn request.'),
      threshold: z
        .number()
        .default(5)
        .describe('Built-in scorer (used without Rspamd): a message whose score reaches this is delivered to Junk. The score adds points for missing Date or Message-ID, a bad From, SPF/DKIM/DMARC failures, DNSBL listings and the GTUBE test string; passes subtract.'),
    })
    .prefault({})
    .describe('Spam filtering of mail received on port 25 (needs [protection] enabled).'),
  virus: z
    .strictObject({
      clamd: z
        .string()
        .regex(/^$|^unix:\/\S+$|^\/\S+$|^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected "unix:/run/clamav/clamd.ctl" or "127.0.0.1:3310"')
        .default('')
        .describe('clamd to scan every message received on port 25 with (INSTREAM): "unix:/run/clamav/clamd.ctl" or "127.0.0.1:3310". An infected message is refused with 554 5.7.1 and the signature name logged. clamd\'s StreamMaxLength must be at least [smtp] max_message_size. Empty: no virus scan.'),
      fail_open: z
        .boolean()
        .default(false)
        .describe('When clamd cannot be reached or fails: false (default) answers 451 4.7.1 so the sender retries later; true accepts the message unscanned.'),
      timeout: duration.default('60s').describe('Time allowed for one scan.'),
    })
    .prefault({})
    .describe('Virus scanning of mail received on port 25 with ClamAV (needs [protection] enabled).'),
  dns: z
    .strictObject({
      servers: z.array(hostPort.or(z.string().regex(/^[0-9a-fA-F:.]+$/))).default([]).describe('DNS servers as "host:port"; empty = the system resolver.'),
    })
    .prefault({})
    .describe('DNS resolution.'),
  protection: z
    .strictObject({
      enabled: z
        .boolean()
        .default(true)
        .describe('Inbound protection on port 25 (sender authentication, DNSBL, pregreet, HELO checks, greylisting, rate limits, and the spam and virus filters). false gives a plain MTA with no filters at all (for testing).'),
      greylisting: z
        .boolean()
        .default(true)
        .describe('Greylisting (RFC 6647): the first message for a (client /24 or /64 network, sender, recipient) triplet gets 451 4.7.1 until greylist_delay has passed; a network that retried once is allowed for greylist_auto_allow.'),
      greylist_delay: duration.default('5m').describe('How long a new triplet is deferred before a retry is accepted.'),
      greylist_auto_allow: duration
        .default('35d')
        .describe('After a triplet passed, the client network skips greylisting for this long (renewed with each accepted message).'),
      greylist_allow_domains: z
        .array(z.string())
        .default([])
        .describe('Sender domains never greylisted when the message passes SPF and DKIM for that domain (decided at the end of DATA, since DKIM needs the message).'),
      pregreet_wait: duration
        .default('2s')
        .describe('How long a client not yet known waits for the 220 banner; one that talks first is refused (pregreet, postscreen\'s test). Clients that passed are remembered for pregreet_remember and get the banner at once.'),
      pregreet_remember: duration.default('24h').describe('How long a client that waited for the banner is remembered as passed.'),
      pipelining_check: z
        .boolean()
        .default(true)
        .describe('Refuse (554 5.5.1) a client that sends further commands before the EHLO/HELO reply could have reached it (RFC 2920 3.1); best effort, see docs/protection.md.'),
      helo_checks: z
        .boolean()
        .default(true)
        .describe('Refuse a HELO/EHLO that names our own host name, or an IP address literal other than the client\'s.'),
      dnsbl: z
        .array(z.string().regex(/^[A-Za-z0-9.-]+(=[0-9.]+)?(\*-?\d+)?$/, 'expected "zone", "zone*weight" or "zone=127.0.0.2*weight"'))
        .default(['zen.spamhaus.org*2', 'bl.spamcop.net'])
        .describe('DNS block and allow lists (RFC 5782) queried for each new client: "zone", "zone*weight" (weight default 1), or "zone=127.0.0.2*weight" to count only that answer. Negative weights make allow lists (DNSWL). The sum of the weights of the lists that list the client is compared with dnsbl_threshold.'),
      dnsbl_threshold: z.number().int().default(2).describe('A client whose DNSBL score reaches this is refused at connect (554 5.7.1).'),
      dnsbl_cache_time: duration.default('10m').describe('How long a client\'s DNSBL score is cached.'),
      arc_trusted_sealers: z
        .array(z.string())
        .default([])
        .describe('Domains (ARC-Seal d=) whose valid ARC chains (RFC 8617) may override a DMARC or SPF failure: mailing lists and forwarders you trust to have authenticated the original message.'),
      screen_exempt: z
        .array(z.string())
        .default(['127.0.0.0/8', '::1/128'])
        .describe('Client networks (CIDR) that skip the screening checks — rate limits, DNSBL, pregreet wait, HELO checks and greylisting — as Postfix\'s permit_mynetworks does; [smtp] relay_networks skip them too. Sender authentication, spam and virus checks still apply.'),
      ban_after_failures: z
        .number()
        .int()
        .nonnegative()
        .default(10)
        .describe('Authentication failures (SMTP AUTH, IMAP, POP3) from one IP address within ban_window that ban it from every listener (Fail2Ban\'s job). 0 disables automatic bans.'),
      ban_window: duration.default('10m').describe('The period over which authentication failures are counted.'),
      ban_time: duration.default('1h').describe('How long an address stays banned (bans survive restarts; `postern ban list|add|del`).'),
      ban_exempt: z
        .array(z.string())
        .default(['127.0.0.0/8', '::1/128'])
        .describe('Networks (CIDR) that are never banned, whatever their failures.'),
      rate_limit_messages_per_minute: z
        .number()
        .int()
        .nonnegative()
        .default(60)
        .describe('Messages (MAIL FROM) per minute from one client IP address on port 25; more get 450 4.7.1. 0 = no limit.'),
      rate_limit_connections_per_minute: z
        .number()
        .int()
        .nonnegative()
        .default(60)
        .describe('Connections per minute from one client IP address on port 25; more get 421 4.7.0. 0 = no limit.'),
      rate_limit_recipients_per_minute: z
        .number()
        .int()
        .nonnegative()
        .default(300)
        .describe('Recipients (RCPT TO) per minute from one client IP address on port 25; more get 452 4.5.3. 0 = no limit.'),
    })
    .prefault({})
    .describe('Inbound protection on port 25 (what postscreen, Postgrey, policyd-spf, OpenDKIM, OpenDMARC and Fail2Ban do). See docs/protection.md.'),
  delivery: z
    .strictObject({
      relay: z
        .string()
        .regex(/^$|^(smtps|smtp\+starttls):\/\/([^@/]+@)?[^@/:]+(:\d{1,5})?\/?$/, 'expected "smtps://[user:pass@]host[:465]" or "smtp+starttls://[user:pass@]host[:587]"')
        .default('')
        .describe(
          'Send all outbound mail through this relay (smarthost) instead of to the recipients\' MX hosts: "smtps://user:pass@host:465" (implicit TLS) or "smtp+starttls://user:pass@host:587" (STARTTLS required; AUTH only after TLS). The relay\'s certificate is always verified. Empty: direct delivery. Per-sender-domain relays and exclusions: `postern relay`.',
        ),
      relay_credentials_file: z
        .string()
        .default('')
        .describe('A file holding "user:password" (one line) for the relay, instead of putting them in the URL.'),
      relay_ca_file: z
        .string()
        .default('')
        .describe('Extra PEM CA certificates trusted for relay hosts (in addition to the system CAs), e.g. for a relay with a private CA.'),
      dane: z
        .boolean()
        .default(true)
        .describe(
          'DANE (RFC 7672) for direct delivery: an MX host with DNSSEC-validated TLSA records gets mail only over TLS with a certificate matching them (DANE-EE, DANE-TA), never in plaintext. Needs a validating resolver in [dns] servers (or the system resolver), such as a local unbound: answers count as validated when it sets the AD bit.',
        ),
      mta_sts: z
        .boolean()
        .default(true)
        .describe(
          "Apply recipient domains' MTA-STS policies (RFC 8461) to direct delivery: with a policy in mode enforce, mail goes only to the MX hosts it lists, only over TLS with a certificate valid for the MX name, never in plaintext (otherwise it waits in the queue). Policies are trusted through the system CAs (NODE_EXTRA_CA_CERTS adds a private one) and kept for their max_age in the database (a restart does not forget them).",
        ),
      source_ipv4: z.string().default('').describe('Local IPv4 address outbound connections come from (must be configured on this machine). Empty: chosen by the OS.'),
      source_ipv6: z.string().default('').describe('Local IPv6 address outbound connections come from. Empty: chosen by the OS.'),
      ipv6: z.boolean().default(true).describe('Also deliver to MX hosts over IPv6 (AAAA records); IPv4 addresses are tried first.'),
      port: z
        .number()
        .int()
        .min(1)
        .max(65535)
        .default(25)
        .describe('Destination port for direct (MX) delivery. Always 25 on the Internet (RFC 5321 4.5.4); other values are for tests and benchmarks.'),
      connect_timeout: duration.default('30s').describe('Time to establish a TCP connection to one address and receive its greeting before trying the next.'),
      command_timeout: duration.default('5m').describe('Time to wait for any reply once connected (RFC 5321 4.5.3.2 suggests 5 minutes for most commands).'),
      max_connections: z.number().int().positive().default(50).describe('Simultaneous outbound SMTP connections in total.'),
      max_connections_per_domain: z
        .number()
        .int()
        .positive()
        .default(5)
        .describe('Simultaneous outbound connections to one destination (a recipient domain, or a relay); a slow or dead destination never takes more, and while one is at this limit the others are served (its backlog does not hold them up).'),
      max_messages_per_connection: z.number().int().positive().default(100).describe('Messages sent over one connection before it is closed and a new one opened.'),
    })
    .prefault({})
    .describe('Outbound delivery (mail submitted on 465/587, or forwarded by aliases, to other domains).'),
  queue: z
    .strictObject({
      lifetime: duration.default('5d').describe('How long a message is retried before it is returned to the sender as undeliverable (Postfix maximal_queue_lifetime).'),
      delay_warning: duration
        .default('4h')
        .describe('Send the sender a delay notice (RFC 3464 "delayed" DSN) once a message has waited this long; "0" disables it.'),
      retry_base: duration.default('5m').describe('First retry interval after a temporary failure; it doubles with each attempt (5m, 10m, 20m, ...).'),
      retry_max: duration.default('4h').describe('Upper bound of the retry interval.'),
      poll_interval: duration.default('1s').describe('How often the queue looks for due messages (also picks up `postern queue retry/release` from the CLI).'),
    })
    .prefault({})
    .describe('The outbound queue.'),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ListenerName = keyof Config['listeners'];
export type ListenerConfig = Config['listeners'][ListenerName];
