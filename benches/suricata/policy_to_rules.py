#!/usr/bin/env python3
"""Turn a Palisade policy plus inventory into Suricata 7 rules of the same intent.

Used by benches/suricata/compare.sh for issue 7's side-by-side run; not part of CI.

    python3 benches/suricata/policy_to_rules.py POLICY.yaml INVENTORY.yaml > eastwest.rules
    python3 benches/suricata/policy_to_rules.py --allow-action pass ...   # see below

One Suricata rule per (Palisade rule, L7 matcher), plus one per L4-only rule:

* addresses: each group resolved against the inventory (label selector and
  namespaces, or CIDRs) into an inline list; `"*"` and 0.0.0.0/0 become `any`;
* HTTP: `http.method`, `http.uri` (a literal prefix with `startswith` as the fast
  pattern, then a PCRE with Palisade's glob semantics: a final `/*` is one or more
  characters, a `*` segment elsewhere exactly one non-empty segment; the query
  string is allowed after the path), `http.host` (port allowed), and headers by
  `http.request_header` ("name: value");
* gRPC: `app-layer` http2, `http.uri` on the `:path` `/service/method`;
* DNS: `dns.query` (`*.` label globs as `endswith`, exact names with `bsize`);
* TLS: `tls.sni`;
* PostgreSQL, MySQL, Redis: Suricata 7 has no detection keywords for SQL
  statements or Redis commands, so these are `content`/`pcre` matches on the
  reassembled TCP stream to the server port (`flow:to_server,established`): the
  statement verb right after a PostgreSQL Query/Parse message header or a MySQL
  COM_QUERY/COM_STMT_PREPARE header, a listed table name later in the statement,
  or a RESP array's command and key. Closest intent, not the same thing: SQL
  users and databases (known only from the login) are not checked, nor are
  statements split over protocol messages in unusual ways.

Actions: `deny` and `alert` become `alert` (offline replay cannot drop). `allow`
becomes `alert ... noalert;` by default: the rule is evaluated like any other but
logs nothing. Suricata's `pass` would not keep the intent: a `pass` that matches
on a TCP flow passes the whole flow, so the deny that ends a flow after allowed
requests (as in this mix) would never be seen. `--allow-action pass` writes them
as `pass` anyway, to show that; `--allow-action alert` makes them log, to check how
many requests each allow rule matches against Palisade's per-rule counts.
"""

import argparse
import ipaddress
import re
import sys

import yaml

SID_BASE = 4200000


def die(msg):
    print(f"policy_to_rules: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- addresses


def resolve_groups(policy, inventory):
    """Group name -> list of address strings ('any' for the world)."""
    workloads = inventory.get("workloads", [])
    groups = {}
    for name, g in (policy["spec"].get("groups") or {}).items():
        addrs = []
        if "cidrs" in g:
            for c in g["cidrs"]:
                net = ipaddress.ip_network(c, strict=False)
                addrs.append("any" if net.prefixlen == 0 else str(net))
        if "selector" in g or "namespaces" in g:
            sel = g.get("selector") or {}
            nss = g.get("namespaces")
            for w in workloads:
                if nss is not None and w.get("namespace") not in nss:
                    continue
                labels = w.get("labels") or {}
                if all(labels.get(k) == v for k, v in sel.items()):
                    addrs.extend(w.get("ips") or [])
        groups[name] = addrs
    return groups


def addr_list(names, groups):
    if not names or "*" in names:
        return "any"
    out = []
    for n in names:
        if n not in groups:
            die(f"unknown group {n!r}")
        out.extend(groups[n])
    if not out:
        return None  # group without members: the rule can never match
    if "any" in out:
        return "any"
    out = sorted(set(out), key=lambda a: ipaddress.ip_network(a, strict=False))
    return out[0] if len(out) == 1 else "[" + ",".join(out) + "]"


def port_list(ports):
    if not ports:
        return "any"
    ps = [str(p) for p in ports]
    return ps[0] if len(ps) == 1 else "[" + ",".join(ps) + "]"


# ---------------------------------------------------------------- escaping


def content_str(s):
    """A Suricata content string: bytes that need it as |hex|."""
    out = []
    for ch in s.encode():
        c = chr(ch)
        if ch < 0x20 or ch > 0x7E or c in ';"\\|':
            out.append(f"|{ch:02x}|")
        else:
            out.append(c)
    return "".join(out).replace("||", " ")


def rx(s):
    """A literal for a PCRE inside a Suricata rule (no `;`, `"` or `/`)."""
    out = []
    for c in s:
        if c.isalnum() or c in "_-":
            out.append(c)
        else:
            out.append(f"\\x{ord(c):02x}")
    return "".join(out)


def alt(items):
    return items[0] if len(items) == 1 else "(?:" + "|".join(items) + ")"


def pcre(body, flags=""):
    # `/` is the delimiter: written as \x2f inside.
    return 'pcre:"/' + body.replace("/", "\\x2f") + f'/{flags}";'


# ---------------------------------------------------------------- matchers


def path_regex(p):
    """Palisade's path glob semantics as a regex on the path (no anchors)."""
    if p.startswith("regex:"):
        return p[len("regex:"):].lstrip("^").rstrip("$"), ""
    if p.endswith("/*"):
        head, tail = p[:-2], "/.+"
    else:
        head, tail = p, ""
    segs = head.split("/")
    parts = ["[^/?]+" if s == "*" else rx(s) for s in segs]
    literal_prefix = ""
    for s in segs:
        if s == "*":
            break
        literal_prefix += s + "/"
    full = "/".join(segs)
    if "*" not in segs:
        literal_prefix = full + ("/" if tail else "")
    return "/".join(parts) + tail, literal_prefix


def domain_regex(d):
    """Palisade's domain globs: a label `*` is one or more labels, `*` inside a label
    any run of non-dots."""
    labels = d.rstrip(".").lower().split(".")
    out = []
    for lab in labels:
        if lab == "*":
            out.append("[^.]+(?:\\.[^.]+)*")
        else:
            out.append("[^.]*".join(rx(x) for x in lab.split("*")))
    return "\\.".join(out)


def http_opts(h, grpc_conn=False):
    opts = []
    notes = []
    methods = h.get("methods")
    if methods:
        if len(methods) == 1:
            m = methods[0].upper()
            opts.append(f'http.method; content:"{content_str(m)}"; bsize:{len(m)};')
        else:
            opts.append("http.method; " + pcre("^" + alt([rx(m.upper()) for m in methods]) + "$"))
    paths = h.get("paths")
    if paths:
        regs = [path_regex(p) for p in paths]
        prefixes = [pre for _, pre in regs]
        common = prefixes[0]
        for pre in prefixes[1:]:
            while not pre.startswith(common):
                common = common[:-1]
        if "/" in common and not common.startswith("/"):
            common = ""
        uri = "http.uri; "
        if len(common) > 1:
            uri += f'content:"{content_str(common)}"; startswith; fast_pattern; '
        uri += pcre("^" + alt([r for r, _ in regs]) + "(?:\\?|$)")
        opts.append(uri)
    hosts = h.get("hosts")
    if hosts:
        opts.append("http.host; " + pcre("^" + alt([domain_regex(x) for x in hosts]) + "(?::[0-9]+)?$", "i"))
    for k, v in (h.get("headers") or {}).items():
        opts.append(f'http.request_header; content:"{content_str(k.lower() + ": " + str(v))}"; nocase; startswith;')
    if grpc_conn:
        notes.append("h2c connection admitted by an app:http rule")
    return opts, notes


def grpc_opts(g):
    svc = g.get("service")
    methods = g.get("methods")
    if svc and methods and len(methods) == 1:
        path = f"/{svc}/{methods[0]}"
        return [f'http.uri; content:"{content_str(path)}"; bsize:{len(path)};']
    if svc:
        pre = f"/{svc}/"
        o = f'http.uri; content:"{content_str(pre)}"; startswith; fast_pattern;'
        if methods:
            o += " " + pcre("^" + rx(pre) + alt([rx(m) for m in methods]) + "$")
        return [o]
    if methods:
        return ["http.uri; " + pcre("^/[^/]+/" + alt([rx(m) for m in methods]) + "$")]
    return []


# A statement start: PostgreSQL Query ('Q' + int32 length) or Parse ('P' + length +
# statement name + NUL); MySQL COM_QUERY (0x03) or COM_STMT_PREPARE (0x16) as the first
# packet of a command (sequence id 0).
SQL_START = {
    "postgres": "(?:Q[\\x00-\\xff]{4}|P[\\x00-\\xff]{4}[^\\x00]*\\x00)",
    "mysql": "\\x00[\\x03\\x16]",
}


def sql_opts(q, app):
    verbs = [v.upper() for v in (q.get("verbs") or [])]
    tables = q.get("tables") or []
    opts = []
    if len(verbs) == 1:
        opts.append(f'content:"{content_str(verbs[0])}"; nocase; fast_pattern;')
    elif len(tables) == 1:
        opts.append(f'content:"{content_str(tables[0])}"; nocase; fast_pattern;')
    body = SQL_START[app] + "\\s*"
    body += alt([rx(v) for v in verbs]) + "\\b" if verbs else "[A-Za-z]+\\b"
    if tables:
        body += "[^\\x00]*?\\b" + alt([rx(t) for t in tables]) + "\\b"
    opts.append(pcre(body, "si"))
    notes = []
    if q.get("users") or q.get("databases"):
        notes.append("users/databases not checked")
    return opts, notes


def redis_key_regex(k):
    out = []
    i = 0
    while i < len(k):
        c = k[i]
        if c == "*":
            out.append("[^\\r]*")
        elif c == "?":
            out.append("[^\\r]")
        elif c == "\\" and i + 1 < len(k):
            i += 1
            out.append(rx(k[i]))
        else:
            out.append(rx(c))
        i += 1
    return "".join(out)


def redis_opts(r):
    cmds = [c.upper() for c in (r.get("commands") or [])]
    keys = r.get("keys") or []
    opts = []
    if len(cmds) == 1:
        opts.append(f'content:"|0d 0a|{content_str(cmds[0])}|0d 0a|"; nocase; fast_pattern;')
    else:
        prefixes = [k.split("*")[0].split("?")[0] for k in keys]
        if len(prefixes) == 1 and len(prefixes[0]) >= 3:
            opts.append(f'content:"{content_str(prefixes[0])}"; fast_pattern;')
    body = "\\*[0-9]+\\r\\n\\$[0-9]+\\r\\n"
    body += "(?i:" + "|".join(rx(c) for c in cmds) + ")\\r\\n" if cmds else "[^\\r]+\\r\\n"
    if keys:
        body += "\\$[0-9]+\\r\\n" + alt([redis_key_regex(k) for k in keys]) + "\\r\\n"
    opts.append(pcre(body))
    return opts


def dns_opts(d):
    names = d.get("names") or []
    if len(names) == 1:
        n = names[0].rstrip(".").lower()
        if n.startswith("*.") and "*" not in n[2:]:
            return [f'dns.query; content:"{content_str(n[1:])}"; nocase; endswith;']
        if "*" not in n:
            return [f'dns.query; content:"{content_str(n)}"; nocase; bsize:{len(n)};']
    return ["dns.query; " + pcre("^" + alt([domain_regex(n) for n in names]) + "\\.?$", "i")]


def tls_opts(t):
    names = t.get("sni") or []
    if len(names) == 1 and "*" not in names[0]:
        n = names[0].lower()
        return [f'tls.sni; content:"{content_str(n)}"; nocase; bsize:{len(n)};']
    return ["tls.sni; " + pcre("^" + alt([domain_regex(n) for n in names]) + "$", "i")]


# ---------------------------------------------------------------- rules


def convert(policy, inventory, allow_action):
    groups = resolve_groups(policy, inventory)
    monitor = {n for n, g in (policy["spec"].get("groups") or {}).items() if g.get("mode") == "monitor"}
    rules_out = []
    stats = {"rules": 0, "suricata": 0, "approx": 0, "skipped": 0}
    sid = SID_BASE
    for r in policy["spec"].get("rules") or []:
        stats["rules"] += 1
        rid = r["id"]
        src = addr_list(r.get("from"), groups)
        dst = addr_list(r.get("to"), groups)
        if src is None or dst is None:
            rules_out.append(f"# {rid}: a group has no workload in the inventory, skipped")
            stats["skipped"] += 1
            continue
        action = r.get("action", "allow")
        app = r.get("app", "tcp")
        ports = port_list(r.get("ports"))
        if action == "allow":
            act, extra = {"pass": ("pass", ""), "alert": ("alert", ""), "noalert": ("alert", " noalert;")}[allow_action]
        else:
            act, extra = "alert", ""
            if action == "deny" and monitor & set(r.get("from") or []):
                extra = ""  # monitor-mode sources: Palisade alerts instead of denying, same here
        sev = r.get("severity")
        matchers = []  # (proto, options list, notes)
        if app == "http":
            grpc_conn = any("application/grpc" in str((h.get("headers") or {}).values()) for h in r.get("http") or [])
            for h in r.get("http") or [{}]:
                o, n = http_opts(h, grpc_conn)
                matchers.append(("http2" if grpc_conn else "http", o, n))
        elif app == "grpc":
            for g in r.get("grpc") or [{}]:
                matchers.append(("http2", grpc_opts(g), []))
        elif app in ("postgres", "mysql"):
            for q in r.get("sql") or [{}]:
                o, n = sql_opts(q, app)
                matchers.append(("tcp", ["flow:to_server,established;"] + o, ["TCP stream content, not a parsed statement"] + n))
        elif app == "redis":
            for q in r.get("redis") or [{}]:
                matchers.append(("tcp", ["flow:to_server,established;"] + redis_opts(q), ["TCP stream content, not a parsed command"]))
        elif app == "dns":
            for d in r.get("dns") or [{}]:
                matchers.append(("dns", dns_opts(d), []))
        elif app == "tls":
            for t in r.get("tls") or [{}]:
                matchers.append(("tls", tls_opts(t), []))
        elif app == "tcp":
            matchers.append(("tcp", ["flow:to_server; flags:S,CE;"], ["L4 only: the SYN"]))
        else:
            rules_out.append(f"# {rid}: app {app!r} has no Suricata equivalent here, skipped")
            stats["skipped"] += 1
            continue
        for i, (proto, opts, notes) in enumerate(matchers):
            # Rules on a gRPC service's HTTP/2 connection name the port; app-layer rules
            # otherwise take any port (Palisade judges by the detected protocol too).
            msg = f"palisade {action} {rid}" + (f" [{i}]" if len(matchers) > 1 else "")
            meta = f"palisade_rule {rid}, palisade_action {action}"
            if sev:
                meta += f", severity {sev}"
            body = " ".join(opts)
            if proto in ("http", "http2") or proto == "dns" or proto == "tls":
                body = ("flow:to_server; " if proto != "dns" else "") + body
            rule = (f'{act} {proto} {src} any -> {dst} {ports} (msg:"{msg}"; {body}{extra} '
                    f"metadata:{meta}; sid:{sid}; rev:1;)")
            if notes:
                rules_out.append("# " + rid + ": " + "; ".join(notes))
                stats["approx"] += proto == "tcp"
            rules_out.append(rule)
            sid += 1
            stats["suricata"] += 1
    return rules_out, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("policy")
    ap.add_argument("inventory")
    ap.add_argument("--allow-action", choices=["noalert", "pass", "alert"], default="noalert")
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()
    with open(a.policy) as f:
        policy = yaml.safe_load(f)
    with open(a.inventory) as f:
        inventory = yaml.safe_load(f)
    if policy.get("kind") != "SegmentationPolicy":
        die(f"{a.policy}: not a SegmentationPolicy")
    rules, stats = convert(policy, inventory, a.allow_action)
    head = [
        f"# Generated by benches/suricata/policy_to_rules.py from {a.policy} and {a.inventory}.",
        f"# {stats['rules']} Palisade rules -> {stats['suricata']} Suricata rules "
        f"({stats['approx']} approximations marked below, {stats['skipped']} skipped); allow as {a.allow_action}.",
    ]
    text = "\n".join(head + rules) + "\n"
    if a.output == "-":
        sys.stdout.write(text)
    else:
        with open(a.output, "w") as f:
            f.write(text)
    print(f"policy_to_rules: {stats['rules']} Palisade rules -> {stats['suricata']} Suricata rules, "
          f"{stats['approx']} approximations, {stats['skipped']} skipped", file=sys.stderr)


if __name__ == "__main__":
    main()
