/** What command handlers see of the server: settings and core services (no storage backend, no socket). */
import type { Logger } from '../../log.js';
import type { TlsManager } from '../../net/tls.js';
import type { Directory } from '../../core/directory.js';
import type { Ingest } from '../../core/ingest.js';
import type { ChangeBus } from '../../core/changes.js';
import type { AuthLimiter } from '../../core/auth-limiter.js';
import type { BlobStore, ImapExtraRepo, MailboxRepo, MessageRepo } from '../../storage/types.js';

export interface ImapSettings {
  hostname: string;
  /** Longest command line (RFC 9051 4: servers should accept at least 8000 octets). */
  maxLineLength: number;
  /** Largest literal / APPEND message (advertised as APPENDLIMIT, RFC 7889). */
  maxLiteralSize: number;
  /** Idle timeout before authentication (the listener's idle_timeout). */
  idleTimeoutMs: number;
  /** Idle timeout once authenticated, also in IDLE (RFC 9051 5.4: at least 30 minutes). */
  authIdleTimeoutMs: number;
  maxConnectionsPerAccount: number;
  maxCommandsPerSecond: number;
  /** Client networks (CIDR) that may log in without TLS on 143 ([imap] plaintext_auth_networks; default none). */
  plaintextAuthNetworks?: readonly string[];
}

export interface ImapDeps {
  directory: Directory;
  ingest: Ingest;
  changes: ChangeBus;
  authLimiter: AuthLimiter;
  tls: TlsManager;
  log: Logger;
  mailboxes: MailboxRepo;
  messages: MessageRepo;
  blobs: BlobStore;
  /** Keywords in use per mailbox (SELECT FLAGS). */
  extra: ImapExtraRepo;
}
