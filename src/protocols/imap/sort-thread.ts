/**
 * SORT and THREAD (RFC 5256; ESORT RFC 5267). Sort keys and references come from columns filled at ingest.
 * Base subject (RFC 5256 2.1) is computed here; ties fall back to message order (RFC 5256 3: sequence number).
 */
import type { SortData } from '../../storage/types.js';
import type { SortCommand, ThreadCommand } from './parser.js';
import { searchView, answerSearch } from './search.js';
import type { ImapSession, Done } from './session.js';

/** RFC 5256 2.1 base subject, simplified to the common forms: Re:/Fw:/Fwd: and [blob] prefixes, (fwd) trailers. */
export function baseSubject(subject: string): string {
  let s = subject.replace(/\s+/g, ' ').trim();
  for (;;) {
    const before = s;
    s = s.replace(/\s*\(fwd\)$/i, '').trim();
    s = s.replace(/^(\[[^\]]*\]\s*)*(re|fwd?)\s*(\[[^\]]*\])?\s*:\s*/i, '').trim();
    s = s.replace(/^\[[^\]]*\]\s*(?=\S)/, '').trim();
    const fwd = /^\[fwd:\s*(.*)\]$/i.exec(s);
    if (fwd) s = fwd[1]!.trim();
    if (s === before) break;
  }
  return s.toLowerCase();
}

function compare(a: SortData, b: SortData, criteria: SortCommand['criteria']): number {
  for (const c of criteria) {
    let r = 0;
    switch (c.key) {
      case 'ARRIVAL':
        r = a.internalDate - b.internalDate;
        break;
      case 'DATE':
        r = (a.sentDate ?? a.internalDate) - (b.sentDate ?? b.internalDate);
        break;
      case 'SIZE':
        r = a.size - b.size;
        break;
      case 'SUBJECT':
        r = cmp(baseSubject(a.subject), baseSubject(b.subject));
        break;
      case 'FROM':
        r = cmp(a.sortFrom, b.sortFrom);
        break;
      case 'TO':
        r = cmp(a.sortTo, b.sortTo);
        break;
      case 'CC':
        r = cmp(a.sortCc, b.sortCc);
        break;
    }
    if (r !== 0) return c.reverse ? -r : r;
  }
  return a.uid - b.uid;
}

const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

export async function runSort(s: ImapSession, cmd: SortCommand): Promise<Done> {
  const view = s.view!;
  const hits = await searchView(s, cmd.search);
  const data = await s.deps.messages.sortData(view.id, hits.map((h) => h.uid));
  data.sort((a, b) => compare(a, b, cmd.criteria));
  const numbers = data.map((d) => (cmd.uid ? d.uid : view.seqOf(d.uid)));
  if (cmd.returnOptions) {
    // ESORT (RFC 5267): MIN/MAX/ALL over the sorted order; ALL is a list in sort order.
    const r = cmd.returnOptions;
    const parts = [`* ESEARCH (TAG ${JSON.stringify(cmd.tag)})`];
    if (cmd.uid) parts.push('UID');
    if (numbers.length) {
      if (r.min) parts.push(`MIN ${Math.min(...numbers)}`);
      if (r.max) parts.push(`MAX ${Math.max(...numbers)}`);
      if (r.all) parts.push(`ALL ${numbers.join(',')}`);
    }
    if (r.count) parts.push(`COUNT ${numbers.length}`);
    if (r.save) view.saved = hits.length ? answerSaved(hits.map((h) => h.uid)) : [];
    if (!(r.save && !r.min && !r.max && !r.all && !r.count)) s.send(parts.join(' ') + '\r\n');
  } else {
    s.send(`* SORT${numbers.length ? ' ' + numbers.join(' ') : ''}\r\n`);
  }
  return {};
}

function answerSaved(uids: number[]): Array<[number, number]> {
  return uids.map((u) => [u, u] as [number, number]).sort((a, b) => a[0] - b[0]);
}

interface Node {
  id: string;
  msg: SortData | null;
  parent: Node | null;
  children: Node[];
}

function dateOf(d: SortData): number {
  return d.sentDate ?? d.internalDate;
}

/** RFC 5256 REFERENCES algorithm (steps 1-5; subject grouping of roots as in step 5). */
function threadReferences(data: SortData[]): Node[] {
  const byId = new Map<string, Node>();
  const node = (id: string): Node => {
    let n = byId.get(id);
    if (!n) byId.set(id, (n = { id, msg: null, parent: null, children: [] }));
    return n;
  };
  const isAncestor = (a: Node, b: Node): boolean => {
    for (let p: Node | null = b; p; p = p.parent) if (p === a) return true;
    return false;
  };
  const link = (parent: Node, child: Node) => {
    if (child.parent || parent === child || isAncestor(child, parent)) return;
    child.parent = parent;
    parent.children.push(child);
  };
  for (const d of data) {
    let n = d.messageId ? byId.get(d.messageId) : undefined;
    if (n && n.msg) n = undefined; // duplicate Message-ID: treat as unique
    if (!n) n = node(d.messageId && !byId.get(d.messageId)?.msg ? d.messageId : `\0${d.uid}`);
    n.msg = d;
    const refs = d.references;
    for (let i = 0; i + 1 < refs.length; i++) link(node(refs[i]!), node(refs[i + 1]!));
    if (refs.length) {
      const p = node(refs[refs.length - 1]!);
      if (n.parent && n.parent !== p) {
        n.parent.children = n.parent.children.filter((c) => c !== n);
        n.parent = null;
      }
      link(p, n);
    }
  }
  let roots = [...byId.values()].filter((n) => !n.parent);
  // Step 4: prune dummies.
  const prune = (list: Node[], parent: Node | null): Node[] => {
    const out: Node[] = [];
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
  // Step 5: group roots by base subject.
  const subj = (n: Node): string => baseSubject((n.msg ?? n.children[0]?.msg)?.subject ?? '');
  const firstDate = (n: Node): number => (n.msg ? dateOf(n.msg) : Math.min(...n.children.map(firstDate)));
  const bySubject = new Map<string, Node>();
  const merged: Node[] = [];
  for (const r of roots) {
    const key = subj(r);
    const prev = key ? bySubject.get(key) : undefined;
    if (!prev) {
      if (key) bySubject.set(key, r);
      merged.push(r);
      continue;
    }
    prev.children.push(r);
    r.parent = prev;
  }
  const sortTree = (list: Node[]) => {
    list.sort((a, b) => firstDate(a) - firstDate(b) || (a.msg?.uid ?? 0) - (b.msg?.uid ?? 0));
    for (const n of list) sortTree(n.children);
  };
  sortTree(merged);
  return merged;
}

function threadOrderedSubject(data: SortData[]): Node[] {
  const sorted = [...data].sort((a, b) => cmp(baseSubject(a.subject), baseSubject(b.subject)) || dateOf(a) - dateOf(b) || a.uid - b.uid);
  const roots: Node[] = [];
  let cur: Node | null = null;
  let key: string | null = null;
  for (const d of sorted) {
    const k = baseSubject(d.subject);
    const n: Node = { id: String(d.uid), msg: d, parent: null, children: [] };
    if (cur && k === key) cur.children.push(n);
    else {
      roots.push(n);
      cur = n;
      key = k;
    }
  }
  roots.sort((a, b) => dateOf(a.msg!) - dateOf(b.msg!) || a.msg!.uid - b.msg!.uid);
  return roots;
}

function format(n: Node, num: (d: SortData) => number): string {
  // RFC 5256 4: "(a b c)" is a chain, "(a (b)(c))" siblings.
  let s = '';
  let cur: Node | null = n;
  const chain: string[] = [];
  while (cur) {
    if (cur.msg) chain.push(String(num(cur.msg)));
    if (cur.children.length === 1) cur = cur.children[0]!;
    else {
      s = chain.join(' ');
      if (cur.children.length > 1) s += (s ? ' ' : '') + cur.children.map((c) => `(${format(c, num)})`).join('');
      return s;
    }
  }
  return chain.join(' ');
}

export async function runThread(s: ImapSession, cmd: ThreadCommand): Promise<Done> {
  const view = s.view!;
  const hits = await searchView(s, cmd.search);
  const data = await s.deps.messages.sortData(view.id, hits.map((h) => h.uid));
  const roots = cmd.algorithm === 'REFERENCES' ? threadReferences(data) : threadOrderedSubject(data);
  const num = (d: SortData) => (cmd.uid ? d.uid : view.seqOf(d.uid));
  s.send(`* THREAD${roots.length ? ' ' + roots.map((r) => `(${format(r, num)})`).join('') : ''}\r\n`);
  return {};
}
