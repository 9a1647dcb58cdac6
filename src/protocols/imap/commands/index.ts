/**
 * THE command table (DESIGN.md habit 3): name -> allowed states -> handler. The parser has already produced a
 * typed Command; the session checks `states` before calling `run`. Nothing else dispatches commands.
 */
import type { Command, CommandName } from '../parser.js';
import type { ImapSession, Done } from '../session.js';
import * as any from './any.js';
import * as auth from './auth.js';
import * as mbox from './mailbox.js';
import * as sel from './selected.js';
import { runFetch } from '../fetch.js';
import { runSearch } from '../search.js';
import { runSort, runThread } from '../sort-thread.js';

export type State = 'notauth' | 'auth' | 'selected' | 'logout';

export interface CommandSpec<N extends CommandName = CommandName> {
  name: N;
  states: readonly State[];
  run(s: ImapSession, cmd: Extract<Command, { name: N }>): Promise<Done | 'none'>;
}

const ANY: readonly State[] = ['notauth', 'auth', 'selected'];
const NOTAUTH: readonly State[] = ['notauth'];
const AUTHED: readonly State[] = ['auth', 'selected'];
const SELECTED: readonly State[] = ['selected'];

function spec<N extends CommandName>(name: N, states: readonly State[], run: CommandSpec<N>['run']): CommandSpec<N> {
  return { name, states, run };
}

const TABLE: CommandSpec[] = [
  spec('CAPABILITY', ANY, (s) => any.runCapability(s)),
  spec('NOOP', ANY, () => any.runNoop()),
  spec('LOGOUT', ANY, (s, c) => any.runLogout(s, c)),
  spec('ID', ANY, (s, c) => any.runId(s, c)),
  spec('STARTTLS', NOTAUTH, (s, c) => auth.runStartTls(s, c)),
  spec('LOGIN', NOTAUTH, (s, c) => auth.runLogin(s, c)),
  spec('AUTHENTICATE', NOTAUTH, (s, c) => auth.runAuthenticate(s, c)),
  spec('ENABLE', AUTHED, (s, c) => any.runEnable(s, c)),
  spec('SELECT', AUTHED, (s, c) => mbox.runSelect(s, c)),
  spec('EXAMINE', AUTHED, (s, c) => mbox.runSelect(s, c)),
  spec('CREATE', AUTHED, (s, c) => mbox.runCreate(s, c)),
  spec('DELETE', AUTHED, (s, c) => mbox.runDelete(s, c)),
  spec('RENAME', AUTHED, (s, c) => mbox.runRename(s, c)),
  spec('SUBSCRIBE', AUTHED, (s, c) => mbox.runSubscribe(s, c)),
  spec('UNSUBSCRIBE', AUTHED, (s, c) => mbox.runSubscribe(s, c)),
  spec('LIST', AUTHED, (s, c) => mbox.runList(s, c)),
  spec('LSUB', AUTHED, (s, c) => mbox.runLsub(s, c)),
  spec('NAMESPACE', AUTHED, (s) => any.runNamespace(s)),
  spec('STATUS', AUTHED, (s, c) => mbox.runStatus(s, c)),
  spec('APPEND', AUTHED, (s, c) => mbox.runAppend(s, c)),
  spec('IDLE', AUTHED, (s, c) => any.runIdle(s, c)),
  spec('GETQUOTA', AUTHED, (s, c) => any.runGetQuota(s, c)),
  spec('GETQUOTAROOT', AUTHED, (s, c) => any.runGetQuotaRoot(s, c)),
  spec('SETQUOTA', AUTHED, () => any.runSetQuota()),
  spec('COMPRESS', AUTHED, (s, c) => any.runCompress(s, c)),
  spec('CHECK', SELECTED, () => sel.runCheck()),
  spec('CLOSE', SELECTED, (s) => sel.runClose(s)),
  spec('UNSELECT', SELECTED, (s) => sel.runUnselect(s)),
  spec('EXPUNGE', SELECTED, (s, c) => sel.runExpunge(s, c)),
  spec('SEARCH', SELECTED, (s, c) => runSearch(s, c)),
  spec('FETCH', SELECTED, (s, c) => runFetch(s, c)),
  spec('STORE', SELECTED, (s, c) => sel.runStore(s, c)),
  spec('COPY', SELECTED, (s, c) => sel.runCopy(s, c)),
  spec('MOVE', SELECTED, (s, c) => sel.runCopy(s, c)),
  spec('SORT', SELECTED, (s, c) => runSort(s, c)),
  spec('THREAD', SELECTED, (s, c) => runThread(s, c)),
] as unknown as CommandSpec[];

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(TABLE.map((c) => [c.name, c]));
