#!/usr/bin/env python3
"""rules.py - the rule sets of scenarios 3 and 4, written for all three systems.

Every rule is written once, as a list of tokens (literal text and typed fields),
and translated into:
  logsift    a rule pack (YAML, docs/rule-packs.md): %{IP:source.ip}-style macros
  rsyslog    a liblognorm v2 rulebase for mmnormalize (one parse tree)
  syslog-ng  regexp-parser() blocks, one per program name, patterns in order
so the three systems extract the same fields from the same lines. Regexes are
anchored at both ends, as liblognorm rules are.

The 12 base rules match what benchmarks/gen.c produces (sshd, PAM, sudo, cron,
UFW/iptables, web access logs): about 3 lines in 4 match one. The 200 and 1,000
rule sets add rules generated (fixed seed) from templates of other daemons'
messages; they share program names with the traffic, so a system must really
rule them out, but they match none of its lines. The 12 base rules are spread
through the list.

  rules.py write N DIR      writes DIR/logsift/bench.yaml, DIR/rsyslog.rb,
                            DIR/syslog-ng.conf; prints the paths
  rules.py check FILE [N]   counts, with Python's re, the lines of FILE each
                            rule matches (a check of the rules and the traffic)
"""
import os
import random
import re
import sys

# ---- the rule language -------------------------------------------------------------
# ("lit", text) | (kind, field) with kind in word, int, ip, rest | ("upto", field, ch)

IPV4 = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
IPV6 = r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
UPTO_NAMES = {"]": "UPTO_RBRACKET", ")": "UPTO_RPAREN", '"': "UPTO_QUOTE", ":": "UPTO_COLON",
              "(": "UPTO_LPAREN", "[": "UPTO_LBRACKET", "'": "UPTO_APOS", "#": "UPTO_HASH"}


def T(spec):
    """Parses 'Failed {word:auth.method} for {ip:source.ip} {upto]:x}' into tokens."""
    out, pos = [], 0
    for m in re.finditer(r"\{(word|int|ip|rest|upto.):([a-z_.]+)\}", spec):
        if m.start() > pos:
            out.append(("lit", spec[pos:m.start()]))
        kind, field = m.group(1), m.group(2)
        out.append(("upto", field, kind[4]) if kind.startswith("upto") else (kind, field))
        pos = m.end()
    if pos < len(spec):
        out.append(("lit", spec[pos:]))
    return out


class Rule:
    def __init__(self, rid, apps, spec, tags=()):
        self.id, self.apps, self.tokens, self.tags = rid, apps, T(spec), list(tags)


BASE = [
    Rule("sshd.auth.failed", ["sshd"],
         "Failed {word:auth.method} for {word:user.name} from {ip:source.ip} port {int:source.port} ssh2",
         ["authentication"]),
    Rule("sshd.auth.failed_invalid_user", ["sshd"],
         "Failed {word:auth.method} for invalid user {word:user.name} from {ip:source.ip} port "
         "{int:source.port} ssh2", ["authentication"]),
    Rule("sshd.auth.accepted", ["sshd"],
         "Accepted {word:auth.method} for {word:user.name} from {ip:source.ip} port {int:source.port} "
         "ssh2: {word:ssh.key.type} {rest:ssh.key.fingerprint}", ["authentication"]),
    Rule("sshd.invalid_user", ["sshd"],
         "Invalid user {word:user.name} from {ip:source.ip} port {int:source.port}", ["authentication"]),
    Rule("sshd.preauth.disconnect", ["sshd"],
         "Disconnected from authenticating user {word:user.name} {ip:source.ip} port {int:source.port} "
         "[preauth]"),
    Rule("sshd.preauth.closed", ["sshd"],
         "Connection closed by {ip:source.ip} port {int:source.port} [preauth]"),
    Rule("pam.session", ["sshd", "sudo", "CRON"],
         "pam_unix({upto::pam.service}:session): session {word:event.action} for user "
         "{upto(:user.name}(uid={int:user.id}) by {rest:pam.by}", ["session"]),
    Rule("sudo.command", ["sudo"],
         "{word:user.name} : TTY={word:sudo.tty} ; PWD={word:sudo.cwd} ; USER={word:user.target.name} ; "
         "COMMAND={rest:sudo.command}", ["privilege"]),
    Rule("cron.command", ["CRON"], "({upto):user.name}) CMD ({rest:cron.command}"),
    Rule("fw.ufw", ["kernel"],
         "[{upto]:kernel.uptime}] [UFW {upto]:event.action}] IN={word:observer.ingress} OUT= "
         "MAC={word:fw.mac} SRC={ip:source.ip} DST={ip:destination.ip} LEN={int:fw.len} "
         "TOS={word:fw.tos} PREC={word:fw.prec} TTL={int:fw.ttl} ID={int:fw.id} DF "
         "PROTO={word:network.transport} SPT={int:source.port} DPT={int:destination.port} "
         "{rest:fw.flags}", ["network"]),
    Rule("fw.iptables", ["kernel"],
         "[{upto]:kernel.uptime}] IPTables-Dropped: IN={word:observer.ingress} OUT= "
         "MAC={word:fw.mac} SRC={ip:source.ip} DST={ip:destination.ip} LEN={int:fw.len} "
         "TOS={word:fw.tos} PREC={word:fw.prec} TTL={int:fw.ttl} ID={int:fw.id} DF "
         "PROTO={word:network.transport} SPT={int:source.port} DPT={int:destination.port} "
         "{rest:fw.flags}", ["network"]),
    Rule("web.access", ["nginx", "apache2"],
         "{ip:source.ip} - {word:user.name} [{upto]:web.time}] \"{word:http.request.method} "
         "{word:url.original} HTTP/{upto\":http.version}\" {int:http.response.status_code} "
         "{int:http.response.body.bytes} \"{upto\":http.request.referrer}\" "
         "\"{upto\":user_agent.original}\"", ["web"]),
]

# ---- generated rules (scenario 4) ------------------------------------------------------

GEN_APPS = ["sshd", "sudo", "CRON", "kernel", "nginx", "apache2", "postfix/smtpd", "postfix/smtp",
            "systemd", "orders", "billing", "dovecot", "named", "haproxy", "kubelet", "dockerd",
            "openvpn", "mysqld", "postgres", "redis-server", "chronyd", "auditd", "slapd", "squid"]
VERBS = ["Rejected", "Refused", "Throttled", "Quarantined", "Rotated", "Evicted", "Renewed",
         "Revoked", "Migrated", "Suspended", "Resumed", "Expired", "Flushed", "Deferred",
         "Promoted", "Demoted", "Pinned", "Unpinned", "Sealed", "Unsealed", "Drained", "Fenced"]
NOUNS = ["lease", "tunnel", "channel", "volume", "replica", "shard", "ticket", "zone", "cgroup",
         "mailbox", "backend", "pool", "snapshot", "certificate", "token", "quota", "slot",
         "segment", "listener", "worker", "bucket", "keyring", "index", "cursor", "manifest"]
STATES = ["completed", "aborted", "stalled", "degraded", "recovered", "timed-out"]
TEMPLATES = [
    "{V} {N} for user {word:user.name} from {ip:source.ip} port {int:source.port}",
    "{N} {int:gen.id} {S} after {int:gen.duration_ms} ms",
    "error: {N} {word:gen.name} {S}: {rest:error.message}",
    "{V} {N} connection from {ip:source.ip} on {word:observer.ingress}",
    "{N} {word:gen.name} changed state from {word:gen.from} to {word:gen.to} ({S})",
    "client {ip:source.ip}#{int:source.port} ({upto):gen.name}): {N} {S} {rest:gen.detail}",
    "{N}[{int:gen.id}]: {V} {word:gen.object} in {int:gen.duration_ms}ms status={int:gen.status}",
    "{V} {N} '{upto':gen.name}' for uid {int:user.id}",
    "warning: {N} {word:gen.name} exceeded {int:gen.limit} {S} units; {rest:gen.detail}",
    "{N}: {V} {int:gen.count} {S} requests from {ip:source.ip}",
]


def generated(n, seed=8):
    """n rules that match none of gen.c's lines; deterministic for a seed."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        t, v, no, s = (rng.randrange(len(TEMPLATES)), rng.choice(VERBS), rng.choice(NOUNS),
                       rng.choice(STATES))
        apps = [] if rng.random() < 0.1 else [rng.choice(GEN_APPS)]
        key = (t, v, no, s, tuple(apps))
        if key in seen:
            continue
        seen.add(key)
        spec = TEMPLATES[t].replace("{V}", v).replace("{N}", no).replace("{S}", s)
        out.append(Rule(f"gen.{no}.{v.lower()}.{len(out)}", apps, spec))
    return out


def ruleset(n):
    """The 12 base rules alone, or spread evenly through n - 12 generated rules."""
    if n <= len(BASE):
        return BASE[:n]
    rules = generated(n - len(BASE))
    for i, r in enumerate(BASE):
        rules.insert(round((i + 0.5) * n / len(BASE)), r)
    return rules[:n]


# ---- translations -----------------------------------------------------------------------

def peer_name(field):
    return field.replace(".", "_")


def pcre(rule, names=peer_name):
    """An anchored PCRE with named groups (syslog-ng, and Python's check)."""
    parts = ["^"]
    for tok in rule.tokens:
        kind = tok[0]
        if kind == "lit":
            parts.append(re.escape(tok[1]))
            continue
        name = names(tok[1])
        if kind == "word":
            parts.append(rf"(?P<{name}>\S+)")
        elif kind == "int":
            parts.append(rf"(?P<{name}>[0-9]+)")
        elif kind == "ip":
            parts.append(rf"(?P<{name}>{IPV4}|{IPV6})")
        elif kind == "rest":
            parts.append(rf"(?P<{name}>.*)")
        else:
            parts.append(rf"(?P<{name}>[^{re.escape(tok[2])}]*)")
    return "".join(parts) + "$"


def logsift_match(rule):
    parts = ["^"]
    for tok in rule.tokens:
        kind = tok[0]
        if kind == "lit":
            parts.append(re.escape(tok[1]).replace(r"\ ", " "))
        elif kind == "word":
            parts.append(f"%{{NOTSPACE:{tok[1]}}}")
        elif kind == "int":
            parts.append(f"%{{INT:{tok[1]}:int}}")
        elif kind == "ip":
            parts.append(f"%{{IP:{tok[1]}}}")
        elif kind == "rest":
            parts.append(f"%{{GREEDYDATA:{tok[1]}}}")
        else:
            parts.append(f"%{{{UPTO_NAMES[tok[2]]}:{tok[1]}}}")
    return "".join(parts) + "$"


def yq(s):
    """A YAML single-quoted scalar."""
    return "'" + s.replace("'", "''") + "'"


def logsift_pack(rules, tests):
    out = ["# Generated by benchmarks/rules.py for the benchmarks: do not edit.",
           "pack: bench", "version: '1'", "patterns:"]
    for ch, name in sorted(UPTO_NAMES.items(), key=lambda kv: kv[1]):
        out.append(f"  {name}: {yq('[^' + re.escape(ch) + ']*')}")
    out.append("rules:")
    for r in rules:
        out.append(f"  - id: {r.id}")
        if len(r.apps) == 1:
            out.append(f"    when: {{ process.name: {yq(r.apps[0])} }}")
        elif r.apps:
            out.append(f"    when: {{ process.name: [{', '.join(yq(a) for a in r.apps)}] }}")
        out.append(f"    match: {yq(logsift_match(r))}")
        if r.tags:
            out.append(f"    tags: [{', '.join(r.tags)}]")
    if tests:
        out.append("tests:")
        for line, rid, fields in tests:
            out.append(f"  - line: {yq(line)}")
            exp = ", ".join(f"{k}: {yq(v)}" for k, v in [("rule.id", rid)] + fields)
            out.append(f"    expect: {{ {exp} }}")
    return "\n".join(out) + "\n"


def lognorm_rulebase(rules):
    out = ["version=2", "# Generated by benchmarks/rules.py for the benchmarks: do not edit."]
    for r in rules:
        parts = []
        for tok in r.tokens:
            kind = tok[0]
            if kind == "lit":
                assert "%" not in tok[1], r.id
                parts.append(tok[1])
                continue
            name = peer_name(tok[1])
            if kind == "word":
                parts.append(f"%{name}:word%")
            elif kind == "int":
                parts.append(f"%{name}:number%")
            elif kind == "ip":
                parts.append('%{"name":"' + name + '", "type":"alternative", "parser":'
                             '[{"type":"ipv4"}, {"type":"ipv6"}]}%')
            elif kind == "rest":
                parts.append(f"%{name}:rest%")
            else:
                ch = tok[2].replace('"', '\\"')
                parts.append(f'%{name}:char-to{{"extradata":"{ch}"}}%')
        out.append(f"rule={r.id}:{''.join(parts)}")
    return "\n".join(out) + "\n"


def sng_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def syslog_ng_block(rules):
    """Statements for a log path: per program, the rules pinned to it in order, then
    (when none matched) the rules for any program. A junction's second channel
    lets a message that no pattern matched go on unparsed."""
    def junction(rs, inner=""):
        pats = ",\n        ".join(sng_string(pcre(r)) for r in rs)
        return ("junction {\n"
                f"    channel {{ parser {{ regexp-parser(patterns(\n        {pats}) "
                "prefix(\".r.\")); }; flags(final); };\n"
                f"    channel {{ {inner}flags(final); }};\n  }};")

    generic = [r for r in rules if not r.apps]
    gen_j = junction(generic) if generic else ""
    by_app = {}
    for r in rules:
        for a in r.apps:
            by_app.setdefault(a, []).append(r)
    parts = []
    for i, (app, rs) in enumerate(sorted(by_app.items())):
        kw = "if" if i == 0 else "elif"
        parts.append(f"{kw} (program({sng_string(app)} type(string))) {{\n  "
                     f"{junction(rs, gen_j + ' ' if gen_j else '')}\n}}")
    block = " ".join(parts)
    if gen_j:
        block += f" else {{\n  {gen_j}\n}};" if parts else gen_j
    elif parts:
        block += ";"
    return "# Generated by benchmarks/rules.py for the benchmarks: do not edit.\n" + block + "\n"


# ---- tests for the pack: one line per base rule, expectations from Python's re ----------

def sample_tests(traffic_lines, rules):
    """(line, rule id, [(field, value)]) for the first line each rule matches."""
    msg_re = re.compile(r"^<\d+>(?:1 \S+ \S+ (\S+) \S+ \S+ (?:-|\[.*?\]) |\w{3} [ \d]\d "
                        r"[\d:]{8} \S+ ([^:\[]+)(?:\[\d+\])?: )(.*)$")
    compiled = [(r, re.compile(pcre(r, names=lambda f: f.replace(".", "__")))) for r in rules]
    tests, done = [], set()
    for line in traffic_lines:
        m = msg_re.match(line)
        if not m:
            continue
        app, msg = m.group(1) or m.group(2), m.group(3)
        for r, rx in compiled:
            if r.id in done or (r.apps and app not in r.apps):
                continue
            mm = rx.match(msg)
            if mm:
                fields = [(k.replace("__", "."), v) for k, v in mm.groupdict().items()][:3]
                tests.append((line, r.id, fields))
                done.add(r.id)
                break
    return tests


def write_all(n, d, traffic=None):
    """Writes the three translations of the n-rule set under d; returns their paths."""
    rules = ruleset(n)
    os.makedirs(os.path.join(d, "logsift"), exist_ok=True)
    tests = []
    if traffic and n == len(BASE):
        with open(traffic, errors="replace") as f:
            tests = sample_tests((next(f).rstrip("\n") for _ in range(5000)), rules)
    paths = {"logsift": os.path.join(d, "logsift"), "rsyslog": os.path.join(d, "rsyslog.rb"),
             "syslog-ng": os.path.join(d, "syslog-ng.conf")}
    with open(os.path.join(d, "logsift", "bench.yaml"), "w") as f:
        f.write(logsift_pack(rules, tests))
    with open(paths["rsyslog"], "w") as f:
        f.write(lognorm_rulebase(rules))
    with open(paths["syslog-ng"], "w") as f:
        f.write(syslog_ng_block(rules))
    return paths


def check(path, n):
    """Counts the lines each rule matches in a traffic file (first match wins)."""
    rules = ruleset(n)
    msg_re = re.compile(r"^<\d+>(?:1 \S+ \S+ (\S+) \S+ \S+ (?:-|\[.*?\]) |\w{3} [ \d]\d "
                        r"[\d:]{8} \S+ ([^:\[]+)(?:\[\d+\])?: )(.*)$")
    compiled = [(r, re.compile(pcre(r))) for r in rules]
    counts, total, unparsed = {}, 0, 0
    with open(path, errors="replace") as f:
        for line in f:
            total += 1
            m = msg_re.match(line.rstrip("\n"))
            if not m:
                unparsed += 1
                continue
            app, msg = m.group(1) or m.group(2), m.group(3)
            for r, rx in compiled:
                if (not r.apps or app in r.apps) and rx.match(msg):
                    counts[r.id] = counts.get(r.id, 0) + 1
                    break
    matched = sum(counts.values())
    print(f"{total} lines, {matched} matched ({100 * matched / max(total, 1):.1f}%), "
          f"{unparsed} without a recognised header")
    for rid, c in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {c:>8}  {rid}")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "write":
        for k, v in write_all(int(sys.argv[2]), sys.argv[3],
                              sys.argv[4] if len(sys.argv) > 4 else None).items():
            print(f"{k}: {v}")
    elif len(sys.argv) >= 3 and sys.argv[1] == "check":
        check(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 12)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
