/**
 * SORT and THREAD (RFC 5256; ESORT RFC 5267). Sort keys and references come from columns filled at ingest
 * (core/message-index: the Subject is stored RFC 2047-decoded; References, else the first In-Reply-To id).
 *
 * - Base subject: RFC 5256 2.1 steps 1-7 exactly (see extractBaseSubject), with the "reply or forward" flag the
 *   REFERENCES algorithm needs in step 5.
 * - Strings compare with i;ascii-casemap (RFC 5256 3, RFC 4790 9.2): ASCII letters folded to upper case, then
 *   octet order; ties fall back to mailbox order (sequence number, RFC 5256 3).
 * - Sent date (RFC 5256 2.2): the Date: header as an instant, else INTERNALDATE.
 * Pure functions (extractBaseSubject, sortMessages, threadReferences, threadOrderedSubject, formatThreads) are
 * exported for table tests; the handlers only fetch data and write the answer.
 */
import type { SortData } from '../../storage/types.js';
import { decodeHeaderValue } from '../../lib/mime/parse.js';
import type { SortCommand, ThreadCommand } from './parser.js';
import { searchView } from './search.js';
import type { ImapSession, Done } from './session.js';

export interface BaseSubject {
  /** The base subject, whitespace-collapsed, case preserved. */
  base: string;
  /** A subj-refwd, "(fwd)" trailer or "[fwd: ...]" wrapper was removed (RFC 5256 2.1, used by THREAD 5.B/5.C). */
  replyOrForward: boolean;
}

const WSP = /[ \t]/;
/** subj-blob = "[" *BLOBCHAR "]" *WSP  (BLOBCHAR: any CHAR8 but "[" and "]"). */
const BLOB = /^\[[^[\]]*\][ \t]*/;
/** subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"  preceded by *subj-blob (subj-leader). */
const LEADER_REFWD = /^(?:\[[^[\]]*\][ \t]*)*(?:re|fwd?)[ \t]*(?:\[[^[\]]*\][ \t]*)?:/i;

/**
 * RFC 5256 2.1 base subject of an already RFC 2047-decoded subject (use baseSubjectOfField for a raw field).
 * (1) tabs/continuations to space, runs of spaces to one; (2) strip subj-trailer ("(fwd)" / WSP) repeatedly;
 * (3) strip subj-leader; (4) strip a leading subj-blob when a non-empty subj-base remains; (5) repeat 3-4;
 * (6) "[fwd:" ... "]" unwrapped and back to (2); (7) done.
 */
export function extractBaseSubject(subject: string): BaseSubject {
  let s = subject.replace(/\r?\n/g, '').replace(/[ \t]+/g, ' ');
  let replyOrForward = false;
  for (;;) {
    // (2) subj-trailer = "(fwd)" / WSP, repeated.
    for (;;) {
      if (s.length && WSP.test(s[s.length - 1]!)) s = s.slice(0, -1);
      else if (s.length >= 5 && s.slice(-5).toLowerCase() === '(fwd)') {
        s = s.slice(0, -5);
        replyOrForward = true;
      } else break;
    }
    // (3)-(5)
    for (;;) {
      const before = s;
      // (3) subj-leader = (*subj-blob subj-refwd) / WSP
      for (;;) {
        if (s.length && WSP.test(s[0]!)) {
          s = s.slice(1);
          continue;
        }
        const m = LEADER_REFWD.exec(s);
        if (m) {
          s = s.slice(m[0].length);
          replyOrForward = true;
          continue;
        }
        break;
      }
      // (4) a subj-blob prefix, only if what remains is a non-empty subj-base.
      const b = BLOB.exec(s);
      if (b && /[^ \t]/.test(s.slice(b[0].length))) s = s.slice(b[0].length);
      if (s === before) break;
    }
    // (6) subj-fwd = "[fwd:" subject "]"
    if (s.length >= 6 && s.slice(0, 5).toLowerCase() === '[fwd:' && s.endsWith(']')) {
      s = s.slice(5, -1);
      replyOrForward = true;
      continue;
    }
    return { base: s, replyOrForward };
  }
}

/** Base subject of a raw Subject field body: (1) RFC 2047 encoded-words decoded to UTF-8 first. */
export function baseSubjectOfField(raw: string | Buffer): BaseSubject {
  return extractBaseSubject(decodeHeaderValue(raw));
}

/** The comparison key of a base subject (i;ascii-casemap). */
export function baseSubject(subject: string): string {
  return asciiUpper(extractBaseSubject(subject).base);
}

function asciiUpper(s: string): string {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

/** i;ascii-casemap ordering (RFC 4790 9.2). */
export function compareCasemap(x: string, y: string): number {
  return cmp(asciiUpper(x), asciiUpper(y));
}

const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

/** RFC 5256 2.2 sent date. */
function dateOf(d: SortData): number {
  return d.sentDate ?? d.internalDate;
}

/** Sorts `data` (given in mailbox order) by the SORT criteria; ties keep mailbox order (RFC 5256 3). */
export function sortMessages(data: SortData[], criteria: SortCommand['criteria']): SortData[] {
  const keyed = data.map((d, i) => ({ d, i, subject: criteria.some((c) => c.key === 'SUBJECT') ? baseSubject(d.subject) : '' }));
  keyed.sort((a, b) => {
    for (const c of criteria) {
      let r = 0;
      switch (c.key) {
        case 'ARRIVAL':
          r = a.d.internalDate - b.d.internalDate;
          break;
        case 'DATE':
          r = dateOf(a.d) - dateOf(b.d);
          break;
        case 'SIZE':
          r = a.d.size - b.d.size;
          break;
        case 'SUBJECT':
          r = cmp(a.subject, b.subject);
          break;
        case 'FROM':
          r = compareCasemap(a.d.sortFrom, b.d.sortFrom);
          break;
        case 'TO':
          r = compareCasemap(a.d.sortTo, b.d.sortTo);
          break;
        case 'CC':
          r = compareCasemap(a.d.sortCc, b.d.sortCc);
          break;
      }
      if (r !== 0) return c.reverse ? -r : r;
    }
    return a.i - b.i;
  });
  return keyed.map((k) => k.d);
}

export async function runSort(s: ImapSession, cmd: SortCommand): Promise<Done> {
  const view = s.view!;
  const hits = await searchView(s, cmd.search);
  const data = sortMessages(await s.deps.messages.sortData(view.id, hits.map((h) => h.uid)), cmd.criteria);
  const numbers = data.map((d) => (cmd.uid ? d.uid : view.seqOf(d.uid)));
  if (cmd.returnOptions) {
    // ESORT (RFC 5267 3): MIN/MAX/COUNT as in RFC 4731; ALL lists the numbers in sort order (no merged ranges).
    const r = cmd.returnOptions;
    const parts = [`* ESEARCH (TAG ${JSON.stringify(cmd.tag)})`];
    if (cmd.uid) parts.push('UID');
    if (numbers.length) {
      if (r.min) parts.push(`MIN ${Math.min(...numbers)}`);
      if (r.max) parts.push(`MAX ${Math.max(...numbers)}`);
      if (r.all) parts.push(`ALL ${numbers.join(',')}`);
    }
    if (r.count) parts.push(`COUNT ${numbers.length}`);
    if (r.save) view.saved = hits.map((h) => [h.uid, h.uid] as [number, number]);
    if (!(r.save && !r.min && !r.max && !r.all && !r.count)) s.send(parts.join(' ') + '\r\n');
  } else {
    s.send(`* SORT${numbers.length ? ' ' + numbers.join(' ') : ''}\r\n`);
  }
  return {};
}

/** A thread tree node; `msg` null = a dummy (RFC 5256 3). `order` = position in mailbox order. */
export interface ThreadNode {
  msg: SortData | null;
  order: number;
  parent: ThreadNode | null;
  children: ThreadNode[];
}

function newNode(msg: SortData | null, order: number): ThreadNode {
  return { msg, order, parent: null, children: [] };
}

/** The message a node sorts by: itself, or a dummy's first child (RFC 5256 3 steps 4 and 6). */
function sortMsg(n: ThreadNode): ThreadNode {
  let c = n;
  while (!c.msg && c.children.length) c = c.children[0]!;
  return c;
}

function byDate(a: ThreadNode, b: ThreadNode): number {
  const x = sortMsg(a);
  const y = sortMsg(b);
  return (x.msg ? dateOf(x.msg) : 0) - (y.msg ? dateOf(y.msg) : 0) || x.order - y.order;
}

function unlink(n: ThreadNode): void {
  const p = n.parent;
  if (!p) return;
  p.children.splice(p.children.indexOf(n), 1);
  n.parent = null;
}

/** True when `a` is `b` or one of its ancestors. */
function isAncestorOrSelf(a: ThreadNode, b: ThreadNode): boolean {
  for (let p: ThreadNode | null = b; p; p = p.parent) if (p === a) return true;
  return false;
}

/** Links parent -> child unless child has a parent or the link would make a loop (RFC 5256 3 step 1.A). */
function link(parent: ThreadNode, child: ThreadNode): void {
  if (child.parent || isAncestorOrSelf(child, parent)) return;
  child.parent = parent;
  parent.children.push(child);
}

/** RFC 5256 3, THREAD=REFERENCES, steps 1-6, over messages given in mailbox order. Returns the root's children. */
export function threadReferences(data: SortData[]): ThreadNode[] {
  const byId = new Map<string, ThreadNode>();
  const all: ThreadNode[] = [];
  const idNode = (id: string): ThreadNode => {
    let n = byId.get(id);
    if (!n) {
      n = newNode(null, Number.MAX_SAFE_INTEGER);
      byId.set(id, n);
      all.push(n);
    }
    return n;
  };
  data.forEach((d, i) => {
    // Step 1: a message's container. No Message-ID, or one already used by an earlier message: a unique one.
    let n: ThreadNode;
    const known = d.messageId ? byId.get(d.messageId) : undefined;
    if (d.messageId && !known?.msg) n = known ?? idNode(d.messageId);
    else {
      n = newNode(null, i);
      all.push(n);
    }
    n.msg = d;
    n.order = i;
    const refs = d.references;
    // 1.A: chain the references (case-sensitive ids; existing links kept; no loops).
    for (let k = 0; k + 1 < refs.length; k++) link(idNode(refs[k]!), idNode(refs[k + 1]!));
    // 1.B: the last reference (or none) is the parent; an existing parent link is replaced.
    const parent = refs.length ? idNode(refs[refs.length - 1]!) : null;
    if (n.parent !== parent) {
      unlink(n);
      if (parent) link(parent, n);
    }
  });
  // Step 2: the root's children.
  let roots = all.filter((n) => !n.parent);
  // Step 3: prune dummies (children promoted; not to the root unless there is only one).
  const prune = (list: ThreadNode[], parent: ThreadNode | null): ThreadNode[] => {
    const out: ThreadNode[] = [];
    for (const n of list) {
      n.children = prune(n.children, n);
      if (!n.msg) {
        if (n.children.length === 0) continue;
        if (parent !== null || n.children.length === 1) {
          for (const c of n.children) c.parent = parent;
          out.push(...n.children);
          continue;
        }
      }
      out.push(n);
    }
    return out;
  };
  roots = prune(roots, null);
  // Step 4: sort the root's children by sent date (a dummy by its first child after sorting its children).
  for (const r of roots) if (!r.msg) r.children.sort(byDate);
  roots.sort(byDate);
  // Step 5: merge threads with the same base subject.
  const info = new Map<ThreadNode, BaseSubject>();
  const subjectOf = (n: ThreadNode): BaseSubject | null => {
    const m = n.msg ? n : n.children[0];
    if (!m?.msg) return null;
    let b = info.get(m);
    if (!b) info.set(m, (b = extractBaseSubject(m.msg.subject)));
    return b;
  };
  const keyOf = (n: ThreadNode): string => {
    const b = subjectOf(n);
    return b ? asciiUpper(b.base) : '';
  };
  const isReply = (n: ThreadNode) => !!n.msg && !!subjectOf(n)?.replyOrForward;
  const table = new Map<string, ThreadNode>();
  for (const r of roots) {
    const key = keyOf(r);
    if (!key) continue; // 5.B.ii
    const t = table.get(key);
    if (!t) table.set(key, r);
    else if (t.msg && (!r.msg || (isReply(t) && !isReply(r)))) table.set(key, r);
  }
  const merged: Array<ThreadNode | null> = [...roots];
  const pos = new Map(roots.map((r, i) => [r, i]));
  for (let i = 0; i < roots.length; i++) {
    const r = roots[i]!;
    const key = keyOf(r);
    if (!key) continue;
    const t = table.get(key)!;
    if (t === r) continue;
    if (!t.msg && !r.msg) {
      for (const c of r.children) {
        c.parent = t;
        t.children.push(c);
      }
      r.children = [];
      merged[i] = null;
    } else if (!t.msg || (isReply(r) && !isReply(t))) {
      r.parent = t;
      t.children.push(r);
      merged[i] = null;
    } else {
      const d = newNode(null, Number.MAX_SAFE_INTEGER);
      d.children = [t, r];
      t.parent = d;
      r.parent = d;
      merged[pos.get(t)!] = d;
      pos.set(d, pos.get(t)!);
      merged[i] = null;
      table.set(key, d);
    }
  }
  const result = merged.filter((n): n is ThreadNode => n !== null);
  for (const n of result) n.parent = null;
  // Step 6: sort every set of siblings by sent date, deepest first.
  const sortTree = (list: ThreadNode[]) => {
    for (const n of list) sortTree(n.children);
    list.sort(byDate);
  };
  sortTree(result);
  return result;
}

/** RFC 5256 3, THREAD=ORDEREDSUBJECT: by base subject then sent date; the first message of a subject is the parent of the rest. */
export function threadOrderedSubject(data: SortData[]): ThreadNode[] {
  const items = data.map((d, i) => ({ n: newNode(d, i), key: baseSubject(d.subject) }));
  items.sort((a, b) => cmp(a.key, b.key) || byDate(a.n, b.n));
  const roots: ThreadNode[] = [];
  let cur: ThreadNode | null = null;
  let key: string | null = null;
  for (const it of items) {
    if (cur && it.key === key) {
      it.n.parent = cur;
      cur.children.push(it.n);
    } else {
      roots.push(it.n);
      cur = it.n;
      key = it.key;
    }
  }
  roots.sort(byDate);
  return roots;
}

/** RFC 5256 4: "(a b c)" is a chain (each the parent of the next), "(a (b)(c))" gives a siblings. */
export function formatThreads(roots: ThreadNode[], num: (d: SortData) => number): string {
  const body = (n: ThreadNode): string => {
    const chain: string[] = [];
    let cur = n;
    for (;;) {
      if (cur.msg) chain.push(String(num(cur.msg)));
      if (cur.children.length !== 1) break;
      cur = cur.children[0]!;
    }
    let s = chain.join(' ');
    if (cur.children.length > 1) s += (s ? ' ' : '') + cur.children.map((c) => `(${body(c)})`).join('');
    return s;
  };
  return roots.map((r) => `(${body(r)})`).join('');
}

export async function runThread(s: ImapSession, cmd: ThreadCommand): Promise<Done> {
  const view = s.view!;
  const hits = await searchView(s, cmd.search);
  const data = await s.deps.messages.sortData(view.id, hits.map((h) => h.uid));
  const roots = cmd.algorithm === 'REFERENCES' ? threadReferences(data) : threadOrderedSubject(data);
  const text = formatThreads(roots, (d) => (cmd.uid ? d.uid : view.seqOf(d.uid)));
  s.send(`* THREAD${text ? ' ' + text : ''}\r\n`);
  return {};
}
