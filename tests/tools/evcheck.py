#!/usr/bin/env python3
"""evcheck.py - checks logsift's JSON-lines output for the integration tests.

bash cannot read JSON without jq, so every field check goes through here.
Each command prints what it found as TAP comments ("# ...") and exits 0 when
the check holds, 1 when it does not.

  evcheck.py valid FILE
      every line is one JSON object, the file is strict UTF-8, and no string
      holds a lone surrogate (\\udcXX); prints the number of events.
  evcheck.py count FILE [SEL...]
      prints how many events match every selector.
  evcheck.py expect FILE [-n COUNT] [SEL...] -- [COND...]
      exactly COUNT (default 1) events match the selectors, and every
      condition holds on each of them.
  evcheck.py seq FILE PREFIX CONNS PER_CONN [--first S] [--any-order]
                 [--max-missing N] [--tail-missing]
      messages "PREFIX conn=C seq=S" (as tests/tools/sendlines writes them):
      every pair for C in [0, CONNS) and S in [FIRST, FIRST+PER_CONN) is
      there exactly once (up to N may be missing, e.g. UDP drops), nothing
      else, and (unless --any-order) each connection's lines are in order.
      --tail-missing: any number may be missing, but only at the end of a
      connection (what a shutdown may cut), never in the middle.
      Prints the number found on its last line.
  evcheck.py messages FILE
      prints the message of every event, one per line (repr), for debugging.

A selector or condition is PATH OP VALUE. PATH is a dotted field name
(`log.syslog.severity.code`) looked up through nested objects; a key that
itself holds dots or '@' is found too. OP is one of
  =V    string equal to V          :=J   equal to the JSON value J
  ~=V   string containing V        ^=V   string starting with V
  @=V   list containing V          !@=V  list not containing V
  #<=N  string/list of length <= N #>=N  length >= N
  ?     present                    !     absent
  ~/RE  string matching the regular expression RE (re.search)
"""
import json
import re
import sys

MISSING = object()
OPS = re.compile(r'^([^=~^#!:?/]+?)(!@=|#<=|#>=|:=|~=|\^=|@=|~/|=|\?$|!$)(.*)$', re.S)


def load(path):
    """Returns the list of events; bad lines become None (reported by valid)."""
    out = []
    with open(path, 'rb') as f:
        for raw in f:
            try:
                out.append(json.loads(raw.decode('utf-8')))
            except (UnicodeDecodeError, ValueError):
                out.append(None)
    return out


def get(obj, path):
    if not isinstance(obj, dict):
        return MISSING
    if path in obj:
        return obj[path]
    i = path.find('.')
    while i >= 0:
        head = path[:i]
        if head in obj:
            v = get(obj[head], path[i + 1:])
            if v is not MISSING:
                return v
        i = path.find('.', i + 1)
    return MISSING


def parse_cond(text):
    m = OPS.match(text)
    if not m:
        sys.exit('evcheck: bad condition %r' % text)
    path, op, val = m.groups()
    if op == ':=':
        val = json.loads(val)
    elif op in ('#<=', '#>='):
        val = int(val)
    elif op == '~/':
        val = re.compile(val)
    return path, op, val


def holds(ev, cond):
    path, op, want = cond
    v = get(ev, path)
    if op == '?':
        return v is not MISSING
    if op == '!':
        return v is MISSING
    if v is MISSING:
        return False
    if op == '=':
        return v == want and isinstance(v, str)
    if op == ':=':
        return v == want and type(v) is type(want)
    if op == '~=':
        return isinstance(v, str) and want in v
    if op == '^=':
        return isinstance(v, str) and v.startswith(want)
    if op == '~/':
        return isinstance(v, str) and want.search(v) is not None
    if op == '@=':
        return isinstance(v, list) and want in v
    if op == '!@=':
        return not (isinstance(v, list) and want in v)
    if op == '#<=':
        return isinstance(v, (str, list)) and len(v) <= want
    if op == '#>=':
        return isinstance(v, (str, list)) and len(v) >= want
    raise AssertionError(op)


def show(v, limit=300):
    s = json.dumps(v, ensure_ascii=True)
    return s if len(s) <= limit else s[:limit] + '...(%d chars)' % len(s)


def has_lone_surrogate(v):
    if isinstance(v, str):
        try:
            v.encode('utf-8')
            return False
        except UnicodeEncodeError:
            return True
    if isinstance(v, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(x) for k, x in v.items())
    if isinstance(v, list):
        return any(has_lone_surrogate(x) for x in v)
    return False


def cmd_valid(path):
    bad = 0
    n = 0
    with open(path, 'rb') as f:
        for lineno, raw in enumerate(f, 1):
            n += 1
            why = None
            try:
                ev = json.loads(raw.decode('utf-8'))
                if not isinstance(ev, dict):
                    why = 'not an object'
                elif has_lone_surrogate(ev):
                    why = 'lone surrogate escape (not valid Unicode)'
                elif not raw.endswith(b'\n'):
                    why = 'no final newline'
            except UnicodeDecodeError as e:
                why = 'invalid UTF-8: %s' % e
            except ValueError as e:
                why = 'invalid JSON: %s' % e
            if why:
                bad += 1
                if bad <= 5:
                    print('# line %d: %s: %r' % (lineno, why, raw[:200]))
    print('# %d lines, %d invalid' % (n, bad))
    return 0 if bad == 0 else 1


def select(events, sels):
    return [e for e in events if e is not None and all(holds(e, s) for s in sels)]


def cmd_count(path, args):
    print(len(select(load(path), [parse_cond(a) for a in args])))
    return 0


def cmd_expect(path, args):
    want_n = 1
    if args[:1] == ['-n']:
        want_n = int(args[1])
        args = args[2:]
    if '--' in args:
        i = args.index('--')
        sels, conds = args[:i], args[i + 1:]
    else:
        sels, conds = args, []
    found = select(load(path), [parse_cond(a) for a in sels])
    rc = 0
    if len(found) != want_n:
        print('# %d events match %s, expected %d' % (len(found), ' '.join(sels), want_n))
        for e in found[:3]:
            print('#   ' + show(e))
        rc = 1
    for e in found:
        for c in conds:
            cond = parse_cond(c)
            if not holds(e, cond):
                print('# %s: got %s' % (c, 'nothing' if get(e, cond[0]) is MISSING
                                        else show(get(e, cond[0]))))
                rc = 1
        if rc:
            print('#   event: ' + show(e, 1000))
            break
    return rc


def cmd_seq(path, prefix, conns, per_conn, first=0, any_order=False, max_missing=0,
            tail_missing=False):
    pat = re.compile(r'(?:^|\s)' + re.escape(prefix) + r' conn=(\d+) seq=(\d+)(?:\s|$)')
    seen = {}
    last = {}
    dups = order = other = 0
    for e in load(path):
        if e is None:
            continue
        m = pat.search(e.get('message', '') if isinstance(e.get('message'), str) else '')
        if not m:
            continue
        c, s = int(m.group(1)), int(m.group(2))
        if not (0 <= c < conns and first <= s < first + per_conn):
            other += 1
            if other <= 3:
                print('# unexpected pair conn=%d seq=%d' % (c, s))
            continue
        if (c, s) in seen:
            dups += 1
            if dups <= 3:
                print('# duplicate conn=%d seq=%d' % (c, s))
        seen[(c, s)] = True
        if not any_order and c in last and s < last[c]:
            order += 1
            if order <= 3:
                print('# out of order: conn=%d seq=%d after seq=%d' % (c, s, last[c]))
        last[c] = s
    missing = [(c, s) for c in range(conns) for s in range(first, first + per_conn)
               if (c, s) not in seen]
    holes = 0
    if tail_missing:
        max_missing = len(missing)
        for c in range(conns):
            top = max([s for (cc, s) in seen if cc == c], default=first - 1)
            for s in range(first, top):
                if (c, s) not in seen:
                    holes += 1
                    if holes <= 5:
                        print('# hole: conn=%d seq=%d missing before seq=%d' % (c, s, top))
    if len(missing) > max_missing:
        for c, s in missing[:5]:
            print('# missing conn=%d seq=%d' % (c, s))
    print('# %s: %d of %d lines, %d missing, %d duplicated, %d out of order, %d unexpected'
          % (prefix, len(seen), conns * per_conn, len(missing), dups, order, other))
    print(len(seen))
    return 0 if not (len(missing) > max_missing or dups or order or other or holes) else 1


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, path, rest = argv[1], argv[2], argv[3:]
    if cmd == 'valid':
        return cmd_valid(path)
    if cmd == 'count':
        return cmd_count(path, rest)
    if cmd == 'expect':
        return cmd_expect(path, rest)
    if cmd == 'seq':
        first = int(rest[rest.index('--first') + 1]) if '--first' in rest else 0
        maxm = int(rest[rest.index('--max-missing') + 1]) if '--max-missing' in rest else 0
        return cmd_seq(path, rest[0], int(rest[1]), int(rest[2]), first,
                       '--any-order' in rest, maxm, '--tail-missing' in rest)
    if cmd == 'messages':
        for e in load(path):
            print(repr(e.get('message') if isinstance(e, dict) else e))
        return 0
    sys.exit('evcheck: unknown command %r' % cmd)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
