/**
 * IMAP section addressing (RFC 9051 6.4.5, BODY[<section>]).
 *
 * A message (the top level, or one embedded in a message/rfc822 part) numbers its parts like
 * this: a multipart message has parts 1..n; any other message has one part, 1, which is the
 * message body itself. Below a part:
 * - multipart: its children, 1..n;
 * - message/rfc822: the embedded message, numbered by the rule above (so "2.1" of a message
 *   part holding a single-part message is that message's body);
 * - any other part of a multipart: "1" is the part itself (as Dovecot does; RFC 9051 is silent);
 * - the single part of a non-multipart message: nothing below it.
 * message/global counts as a message only with `messageGlobal` (IMAP4rev2 / RFC 9051); for
 * IMAP4rev1 clients it is a leaf, which is what Dovecot 2.3 does.
 */
import type { MimePart } from './types.js';

export interface SectionOptions {
  /** treat message/global like message/rfc822 (RFC 9051); default false */
  messageGlobal?: boolean;
}

function isMessage(p: MimePart, opts?: SectionOptions): boolean {
  if (!p.message) return false;
  return p.subtype === 'rfc822' || (opts?.messageGlobal === true && p.subtype === 'global');
}

/** Parts numbered 1..n below a message root. */
const messageParts = (root: MimePart): MimePart[] => root.children ?? [root];

/** The part at `path` (1-based numbers), or null when there is none. [] is the root itself. */
export function findSection(root: MimePart, path: number[], opts?: SectionOptions): MimePart | null {
  if (path.length === 0) return root;
  let list = messageParts(root);
  let inMultipart = root.children !== undefined; // are `list` the parts of a multipart?
  let cur: MimePart | null = null;
  for (const n of path) {
    if (!Number.isInteger(n) || n < 1 || n > list.length) return null;
    cur = list[n - 1];
    if (cur.children) {
      list = cur.children;
      inMultipart = true;
    } else if (isMessage(cur, opts)) {
      const embedded = cur.message!.part;
      list = messageParts(embedded);
      inMultipart = embedded.children !== undefined;
    } else {
      list = inMultipart ? [cur] : [];
    }
  }
  return cur;
}

/**
 * Bytes of BODY[<path>.<spec>] (RFC 9051 6.4.5), or null when the section does not exist (the
 * IMAP layer then sends an empty string, as Dovecot does).
 * spec: '' = the part's body (the whole message for []); 'MIME' = the part's own header;
 * 'HEADER' / 'TEXT' = header / body of the message at that point: the top level for [],
 * otherwise the message embedded in a message/rfc822 part. HEADER.FIELDS is left to the
 * caller (getHeaders on the same part).
 */
export function sectionBytes(
  raw: Buffer,
  root: MimePart,
  path: number[],
  spec: '' | 'MIME' | 'HEADER' | 'TEXT' = '',
  opts?: SectionOptions,
): Buffer | null {
  if (path.length === 0) {
    if (spec === 'HEADER') return raw.subarray(root.headerStart, root.bodyStart);
    if (spec === 'TEXT') return raw.subarray(root.bodyStart, root.end);
    if (spec === '') return raw;
    return null;
  }
  const p = findSection(root, path, opts);
  if (p === null) return null;
  switch (spec) {
    case '':
      return raw.subarray(p.bodyStart, p.end);
    case 'MIME':
      return raw.subarray(p.headerStart, p.bodyStart);
    case 'HEADER':
    case 'TEXT': {
      if (!isMessage(p, opts)) return null;
      const m = p.message!.part;
      return spec === 'HEADER' ? raw.subarray(m.headerStart, m.bodyStart) : raw.subarray(m.bodyStart, m.end);
    }
  }
}
