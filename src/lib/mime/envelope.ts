/**
 * ENVELOPE data (RFC 9051 7.5.2) from a part's header block.
 *
 * Follows Dovecot 2.3 where RFC 9051 leaves room: for Date, Subject, In-Reply-To and Message-ID
 * the last occurrence wins; address fields that occur more than once are concatenated; a
 * present-but-empty Sender / Reply-To counts as absent and defaults to From.
 */
import { parseAddressList } from './address.js';
import { fieldName, fieldValueBin, scanHeader } from './headers.js';
import { binToString } from './lexer.js';
import type { Address, Envelope, MimePart } from './types.js';

type StrKey = 'date' | 'subject' | 'inReplyTo' | 'messageId';
type AddrKey = 'from' | 'sender' | 'replyTo' | 'to' | 'cc' | 'bcc';

const FIELDS: Record<string, StrKey | AddrKey> = {
  date: 'date',
  subject: 'subject',
  'in-reply-to': 'inReplyTo',
  'message-id': 'messageId',
  from: 'from',
  sender: 'sender',
  'reply-to': 'replyTo',
  to: 'to',
  cc: 'cc',
  bcc: 'bcc',
};
const STRING_KEYS = new Set<string>(['date', 'subject', 'inReplyTo', 'messageId']);

export function buildEnvelope(raw: Buffer, part: MimePart): Envelope {
  const env: Envelope = {
    date: null,
    subject: null,
    from: null,
    sender: null,
    replyTo: null,
    to: null,
    cc: null,
    bcc: null,
    inReplyTo: null,
    messageId: null,
  };
  const scan = scanHeader(raw, part.headerStart, part.bodyStart, undefined, (a, b) => b - a <= 11);
  for (const f of scan.fields) {
    if (f.nameEnd - f.nameStart > 11) continue;
    const key = FIELDS[fieldName(raw, f).toLowerCase()];
    if (key === undefined) continue;
    const value = fieldValueBin(raw, f);
    if (STRING_KEYS.has(key)) {
      env[key as StrKey] = binToString(value);
    } else {
      const list = parseAddressList(value);
      if (list.length === 0) continue;
      const prev: Address[] | null = env[key as AddrKey];
      env[key as AddrKey] = prev ? prev.concat(list) : list;
    }
  }
  if (env.sender === null) env.sender = env.from;
  if (env.replyTo === null) env.replyTo = env.from;
  return env;
}
