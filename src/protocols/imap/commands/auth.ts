/**
 * Not-authenticated state (RFC 9051 6.2): STARTTLS, LOGIN, AUTHENTICATE PLAIN (SASL-IR, RFC 4959).
 * Before TLS on port 143 LOGIN and AUTHENTICATE answer NO [PRIVACYREQUIRED] (RFC 9051 6.2.3, LOGINDISABLED).
 * Failures go through the shared AuthLimiter (the same back-off as SMTP AUTH); passwords are never logged.
 */
import { sleep } from '../../../core/auth-limiter.js';
import { ImapBad, ImapNo } from '../errors.js';
import type { AuthenticateCommand, LoginCommand, StartTlsCommand } from '../parser.js';
import type { ImapSession, Done } from '../session.js';

async function login(s: ImapSession, username: string, password: string): Promise<Done> {
  if (!s.authAllowed) throw new ImapNo('PRIVACYREQUIRED', 'Use STARTTLS first');
  const { directory, authLimiter, log } = s.deps;
  const account = await directory.authenticate(username, password);
  if (!account) {
    await sleep(authLimiter.failure(s.info.remoteAddress));
    log.info({ cid: s.id, user: username.slice(0, 200), remote: s.info.remoteAddress }, 'imap login failed');
    throw new ImapNo('AUTHENTICATIONFAILED', 'Invalid credentials');
  }
  authLimiter.success(s.info.remoteAddress);
  if (!s.host.acquireAccount(account.id)) throw new ImapNo('LIMIT', 'Too many connections for this account');
  s.loggedIn(account);
  log.info({ cid: s.id, user: account.address, remote: s.info.remoteAddress }, 'imap login');
  return { code: `CAPABILITY ${s.capabilities().join(' ')}`, text: 'Logged in' };
}

export async function runLogin(s: ImapSession, cmd: LoginCommand): Promise<Done> {
  return login(s, cmd.username, cmd.password);
}

/** RFC 4616 PLAIN: authzid NUL authcid NUL passwd; an authzid other than the user is refused. */
export async function authenticateWith(s: ImapSession, mechanism: string, response: Buffer): Promise<Done> {
  if (mechanism !== 'PLAIN') throw new ImapNo('CANNOT', 'Unsupported mechanism');
  const parts = response.toString('utf8').split('\0');
  if (parts.length !== 3) throw new ImapBad('Malformed PLAIN response');
  const [authz, user, pass] = parts as [string, string, string];
  if (authz && authz.toLowerCase() !== user.toLowerCase()) throw new ImapNo('AUTHORIZATIONFAILED', 'Authorization identity not allowed');
  return login(s, user, pass);
}

export async function runAuthenticate(s: ImapSession, cmd: AuthenticateCommand): Promise<Done | 'none'> {
  if (!s.authAllowed) throw new ImapNo('PRIVACYREQUIRED', 'Use STARTTLS first');
  const mech = cmd.mechanism.toUpperCase();
  if (mech !== 'PLAIN') throw new ImapNo('CANNOT', 'Unsupported mechanism');
  if (cmd.initialResponse === null) {
    s.awaitAuthResponse(cmd.tag, mech);
    return 'none';
  }
  return authenticateWith(s, mech, cmd.initialResponse);
}

export async function runStartTls(s: ImapSession, cmd: StartTlsCommand): Promise<Done | 'none'> {
  if (s.secure || s.role === 'imaps') throw new ImapBad('TLS is already active');
  await s.startTls(cmd.tag);
  return 'none';
}
