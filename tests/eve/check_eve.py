#!/usr/bin/env python3
"""Checks Palisade's event files against Suricata 7's EVE schema (PRODUCT.md, "Events").

Usage: check_eve.py [--schema PATH] [--examples N] [--all] EVENTS.jsonl [...]

Every line must be one JSON object that validates against Suricata 7.0.9's
`etc/schema.json` (read from ../shared/reference/ beside the repository: GPL test data, never
copied into this repository) with exactly Palisade's documented top-level additions allowed
on top (PALISADE_ADDITIONS below; `additionalProperties: false` stays for everything else),
and passes the checks the schema cannot express (see README.md in this folder and
SURICATA-EVE.md for where each rule comes from).

Problems are grouped by kind: each kind prints its count and its first examples as
`FILE:LINE: path: message`; `--all` prints every problem first. Exit 0 when clean, 1 when
any problem was found, 2 when the input or the schema cannot be read.
"""

import argparse
import copy
import json
import re
import sys
from collections import OrderedDict
from pathlib import Path

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:  # pragma: no cover - reported to the caller
    sys.stderr.write(
        "check_eve.py: the Python module jsonschema is missing "
        "(Debian: apt-get install python3-jsonschema; CI: bash tests/peers/install.sh)\n"
    )
    sys.exit(2)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SCHEMA = REPO / ".." / "shared" / "reference" / "suricata-7.0.9-eve-schema.json"

# --- Palisade's additions: the only top-level keys allowed beyond Suricata's schema ------
# One place. Each has a schema of its own, with the types PRODUCT.md gives.

_STR = {"type": "string"}
_INT = {"type": "integer", "minimum": 0}
_ACTION = {"enum": ["allow", "deny", "alert"]}

# A workload object: `name`, `namespace`, `group`, and `image`/`annotations` when the
# inventory has them. None is required on its own: an address that only a CIDR group knows
# has a `group` and no inventory `name`; a key with no value is left out (no nulls).
_WORKLOAD = {
    "type": "object",
    "properties": {
        "name": _STR,
        "namespace": _STR,
        "group": _STR,
        "image": _STR,
        "annotations": {"type": "object", "additionalProperties": _STR},
    },
    "additionalProperties": False,
    "minProperties": 1,
}

PALISADE_ADDITIONS = {
    "src_workload": _WORKLOAD,
    "dest_workload": _WORKLOAD,
    # The decision in Palisade's terms.
    "policy_verdict": {
        "type": "object",
        "properties": {
            "action": _ACTION,
            "rule": _STR,
            "policy_version": _INT,
            "mode": {"enum": ["learn", "monitor", "protect"]},
            "enforced": {"type": "boolean"},
            # On a flow record: how many of the flow's packets were dropped.
            "dropped_pkts": _INT,
            # On a flow record seen on a tap: how many would have been dropped inline.
            "would_drop_pkts": _INT,
        },
        "required": ["action", "rule", "policy_version", "mode", "enforced"],
        "additionalProperties": False,
    },
    # Beside gRPC's `http`.
    "grpc": {
        "type": "object",
        "properties": {"service": _STR, "method": _STR, "status": _INT},
        "required": ["service", "method"],
    },
    # Palisade's MySQL object (PRODUCT.md names it, gives no fields); the statement is `sql`.
    "mysql": {"type": "object"},
    "redis": {
        "type": "object",
        "properties": {"command": _STR, "key": _STR, "error": _STR},
        "required": ["command"],
    },
    # On every pgsql and mysql record, one per statement; a login is verb LOGIN.
    "sql": {
        "type": "object",
        "properties": {
            "verb": _STR,
            "tables": {"type": "array", "items": _STR},
            "user": _STR,
            "database": _STR,
            "query": _STR,
            "error": _STR,
        },
        "required": ["verb"],
    },
    # A candidate policy's decision where it disagrees with the active one.
    "shadow": {
        "type": "object",
        "properties": {"action": _ACTION, "rule": _STR, "policy_version": _INT},
        "required": ["action", "rule", "policy_version"],
        "additionalProperties": False,
    },
    # A policy version loaded or rejected.
    "policy": {
        "type": "object",
        "properties": {
            "status": {"enum": ["loaded", "rejected", "skipped"]},
            "version": _INT,
            "name": _STR,
            "source": _STR,
            "rules": _INT,
            "error": _STR,
            # A shadow candidate's load (absent for the active policy).
            "role": {"enum": ["shadow"]},
        },
        "required": ["status"],
    },
    # The ALPN list a TLS client offered (Suricata 7 does not log ALPN).
    "tls_alpn": {"type": "array", "items": _STR},
    # Why a flow could not be judged (onUninspectable decisions).
    "uninspectable": {
        "type": "object",
        "properties": {"cause": _STR, "detail": _STR},
        "required": ["cause"],
    },
    # What Suricata's `anomaly` object cannot hold.
    "anomaly_detail": _STR,
}

# --- What the schema cannot say ---------------------------------------------------------

EVENT_TYPES = (
    "alert flow anomaly drop http dns tls pgsql mysql redis policy shadow stats".split()
)

# Transaction records: the objects each must carry, and the other protocol objects it may.
TX_OBJECTS = {
    "http": (["http"], ["grpc"]),
    "dns": (["dns"], []),
    "tls": (["tls"], ["tls_alpn"]),
    "pgsql": (["pgsql", "sql"], []),
    "mysql": (["sql"], ["mysql"]),
    "redis": (["redis"], []),
}
PROTOCOL_KEYS = {"http", "grpc", "dns", "tls", "tls_alpn", "pgsql", "mysql", "sql", "redis"}

# Other record kinds: the object each must carry.
RECORD_OBJECTS = {
    "alert": ["alert"],
    "flow": ["flow"],
    "anomaly": ["anomaly"],
    "drop": ["drop"],
    "policy": ["policy"],
    "shadow": ["shadow", "policy_verdict"],
    "stats": ["stats"],
}
# Type-specific objects and the event types that may carry them (Suricata: an alert carries
# the flow's `flow` object, a drop may carry the dropping rule's `alert`).
OWN_OBJECTS = {
    "alert": {"alert", "drop"},
    "flow": {"flow", "alert"},
    "tcp": {"flow"},
    "anomaly": {"anomaly"},
    "drop": {"drop"},
    "policy": {"policy"},
    "shadow": {"shadow"},
    "stats": {"stats"},
}

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+0000$")
# Values Suricata 7 writes (SURICATA-EVE.md cites each).
PROTO_NAMES = {"TCP", "UDP", "ICMP", "IPv6-ICMP", "SCTP", "GRE", "ESP", "AH", "IGMP"}
APP_PROTOS = {"http", "http2", "dns", "tls", "pgsql", "failed", "grpc", "mysql", "redis"}
ALERT_ACTIONS = {"allowed", "blocked"}
FLOW_STATES = {"new", "established", "closed", "bypassed"}
FLOW_REASONS = {"timeout", "forced", "shutdown", "unknown"}
FLOW_ACTIONS = {"drop", "pass"}
ANOMALY_TYPES = {"decode", "stream", "applayer", "unknown"}
ANOMALY_LAYERS = {"proto_parser", "proto_detect", "parser"}
VERDICT_ACTIONS = {"drop", "alert", "pass"}
TLS_VERSIONS = {"SSLv2", "SSLv3", "TLSv1", "TLS 1.1", "TLS 1.2", "TLS 1.3", "UNDETERMINED"}
TLS_VERSION_OTHER = re.compile(r"^(TLS 1\.3 draft-\d+|0x[0-9a-f]{4})$")
DNS_RRTYPES = set(
    (
        "A NS ND MF CNAME SOA MB MG MR NULL WKS PTR HINFO MINFO MX TXT RP AFSDB X25 ISDN RT "
        "NSAP NSAPPT SIG KEY PX GPOS AAAA LOC NXT SRV ATMA NAPTR KX CERT A6 DNAME OPT APL DS "
        "SSHFP IPSECKEY RRSIG NSEC DNSKEY DHCID NSEC3 NSEC3PARAM TLSA HIP CDS CDSNKEY HTTPS "
        "SPF TKEY TSIG MAILA ANY URI"
    ).split()
)
IANA_MNEMONIC = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
DNS_RCODES = set(
    "NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED YXDOMAIN YXRRSET NXRRSET NOTAUTH "
    "NOTZONE".split()
)
HTTP_PROTOCOL = re.compile(r"^HTTP/\d(\.\d)?$")
COMMUNITY_ID = re.compile(r"^1:[A-Za-z0-9+/]{27}=$")
FLOW_ID_LIMIT = 1 << 51


class Problems:
    """Problems grouped by kind, in order of first appearance."""

    def __init__(self):
        self.kinds = OrderedDict()
        self.total = 0

    def add(self, kind, where, path, message):
        self.total += 1
        self.kinds.setdefault(kind, []).append(f"{where}: {path}: {message}")


def dotted(parts, collapse=False):
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += "[]" if collapse else f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "(record)"


def build_validator(schema_path):
    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    schema = copy.deepcopy(schema)
    props = schema.setdefault("properties", {})
    for key, sub in PALISADE_ADDITIONS.items():
        if key in props:
            raise SystemExit(f"check_eve.py: {key} is already in Suricata's schema")
        props[key] = sub
    if schema.get("additionalProperties") is not False:
        raise SystemExit("check_eve.py: expected additionalProperties false at the top")
    cls = jsonschema.validators.validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def schema_problems(validator, obj, where, out):
    for err in validator.iter_errors(obj):
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = err.schema.get("properties", {})
            for key in err.instance:
                if key not in known:
                    full = path + [key]
                    if not path:
                        where_to = "Suricata's schema nor Palisade's additions"
                    elif path[0] in PALISADE_ADDITIONS:
                        where_to = f"Palisade's `{path[0]}` object"
                    else:
                        where_to = f"Suricata's `{path[0]}` object"
                    out.add(
                        f"{dotted(full, True)}: key not in {where_to}",
                        where,
                        dotted(full),
                        f"key not in {where_to}",
                    )
            continue
        if err.instance is None:
            continue  # reported once by the null rule
        if path == ["timestamp"] and err.validator == "pattern":
            continue  # reported, more precisely, by the timestamp rule
        msg = err.message
        if len(msg) > 160:
            msg = msg[:157] + "..."
        kind_msg = {
            "type": f"not of type {err.validator_value}",
            "required": "missing a required key",
            "enum": f"not one of {err.validator_value}",
        }.get(err.validator, f"fails '{err.validator}'")
        if err.validator == "required":
            kind_msg = msg
        out.add(f"{dotted(path, True)}: {kind_msg}", where, dotted(path), msg)


def walk_nulls(value, path, where, out):
    if isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                out.add(
                    f"{dotted(path + [k], True)}: null value",
                    where,
                    dotted(path + [k]),
                    "null value (Suricata leaves a key with no value out)",
                )
            else:
                walk_nulls(v, path + [k], where, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if v is None:
                out.add(f"{dotted(path, True)}[]: null item", where, dotted(path + [i]), "null")
            else:
                walk_nulls(v, path + [i], where, out)


def value_in(out, where, obj, path, allowed, what):
    cur = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return
        cur = cur[p]
    if cur is None:
        return
    if isinstance(allowed, (set, frozenset)):
        ok = cur in allowed
    else:
        ok = allowed(cur)
    if not ok:
        shown = json.dumps(cur)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        out.add(
            f"{dotted(path, True)}: not a value Suricata writes",
            where,
            dotted(path),
            f"{shown} is not {what}",
        )


def semantic_problems(obj, where, out):
    walk_nulls(obj, [], where, out)
    et = obj.get("event_type")

    ts = obj.get("timestamp")
    if isinstance(ts, str) and not TIMESTAMP.match(ts):
        out.add(
            "timestamp: not YYYY-MM-DDTHH:MM:SS.ffffff+0000",
            where,
            "timestamp",
            f"{ts!r} is not Suricata's form YYYY-MM-DDTHH:MM:SS.ffffff+0000",
        )
    flow = obj.get("flow")
    if isinstance(flow, dict):
        for k in ("start", "end"):
            v = flow.get(k)
            if isinstance(v, str) and not TIMESTAMP.match(v):
                out.add(
                    f"flow.{k}: not YYYY-MM-DDTHH:MM:SS.ffffff+0000",
                    where,
                    f"flow.{k}",
                    f"{v!r} is not Suricata's timestamp form",
                )

    if et not in EVENT_TYPES:
        out.add(
            "event_type: unknown",
            where,
            "event_type",
            f"{et!r} is not one of {' '.join(EVENT_TYPES)}",
        )
    else:
        if et in TX_OBJECTS:
            required, allowed = TX_OBJECTS[et]
            for key in required:
                if key not in obj:
                    out.add(
                        f"[{et}] record without its `{key}` object",
                        where,
                        key,
                        f"every `{et}` transaction record carries `{key}`",
                    )
            for key in sorted(PROTOCOL_KEYS & obj.keys()):
                if key not in required and key not in allowed:
                    out.add(
                        f"[{et}] record carries `{key}`",
                        where,
                        key,
                        f"`{key}` does not belong on a `{et}` record",
                    )
        else:
            for key in RECORD_OBJECTS.get(et, []):
                if key not in obj:
                    out.add(
                        f"[{et}] record without its `{key}` object",
                        where,
                        key,
                        f"every `{et}` record carries `{key}`",
                    )
            # An alert, or a shadow record of a transaction, carries the request's objects.
            if et not in ("alert", "shadow"):
                for key in sorted(PROTOCOL_KEYS & obj.keys()):
                    out.add(
                        f"[{et}] record carries protocol object `{key}`",
                        where,
                        key,
                        f"protocol objects belong on transaction records, alerts and shadow records, not `{et}`",
                    )
        for key, owners in OWN_OBJECTS.items():
            if key in obj and et not in owners:
                out.add(
                    f"[{et}] record carries `{key}`",
                    where,
                    key,
                    f"`{key}` belongs on {'/'.join(sorted(owners))} records",
                )

    alert = obj.get("alert")
    if isinstance(alert, dict):
        sev = alert.get("severity")
        if sev is not None and not (isinstance(sev, int) and not isinstance(sev, bool) and 1 <= sev <= 3):
            out.add("alert.severity: not 1..3", where, "alert.severity", f"{sev!r} is not 1..3")
        value_in(out, where, obj, ["alert", "action"], ALERT_ACTIONS, "allowed|blocked")

    # Suricata's own value sets (SURICATA-EVE.md).
    value_in(out, where, obj, ["proto"], lambda v: v in PROTO_NAMES or (isinstance(v, str) and v.isdigit()), "an IANA protocol name as Suricata prints it")
    value_in(out, where, obj, ["app_proto"], APP_PROTOS, "a Suricata app_proto name (or grpc/mysql/redis)")
    value_in(out, where, obj, ["flow_id"], lambda v: isinstance(v, int) and 0 <= v < FLOW_ID_LIMIT, "below 2^51 (Suricata masks flow ids to 51 bits)")
    value_in(out, where, obj, ["community_id"], lambda v: isinstance(v, str) and bool(COMMUNITY_ID.match(v)), "a community id v1 (1:<base64 sha1>)")
    for port in ("src_port", "dest_port"):
        value_in(out, where, obj, [port], lambda v: isinstance(v, int) and 0 <= v <= 65535, "a port number")
    value_in(out, where, obj, ["flow", "state"], FLOW_STATES, "new|established|closed|bypassed")
    value_in(out, where, obj, ["flow", "reason"], FLOW_REASONS, "timeout|forced|shutdown|unknown")
    value_in(out, where, obj, ["flow", "action"], FLOW_ACTIONS, "drop|pass")
    value_in(out, where, obj, ["anomaly", "type"], ANOMALY_TYPES, "decode|stream|applayer|unknown")
    value_in(out, where, obj, ["anomaly", "layer"], ANOMALY_LAYERS, "proto_parser|proto_detect|parser")
    value_in(out, where, obj, ["verdict", "action"], VERDICT_ACTIONS, "drop|alert|pass")
    value_in(out, where, obj, ["tls", "version"], lambda v: v in TLS_VERSIONS or bool(TLS_VERSION_OTHER.match(str(v))), "SSLv2|SSLv3|TLSv1|TLS 1.1|TLS 1.2|TLS 1.3|UNDETERMINED")
    value_in(out, where, obj, ["http", "protocol"], lambda v: isinstance(v, str) and bool(HTTP_PROTOCOL.match(v)), "HTTP/1.0|HTTP/1.1|...")
    dns = obj.get("dns")
    if isinstance(dns, dict):
        value_in(out, where, obj, ["dns", "version"], {2}, "2 (Suricata 7 logs DNS version 2)")
        value_in(out, where, obj, ["dns", "type"], {"query", "answer"}, "query|answer")
        # Suricata names the types of DNS_RRTYPES and writes others as numbers; Palisade
        # names every IANA-assigned type, as tshark does (CAA, WALLET...). Suricata's own
        # schema.json types the field as a plain string, so consumers take either.
        rr = lambda v: v in DNS_RRTYPES or (isinstance(v, str) and (v.isdigit() or IANA_MNEMONIC.match(v) is not None))
        value_in(out, where, obj, ["dns", "rrtype"], rr, "an rrtype name or a decimal number")
        value_in(out, where, obj, ["dns", "rcode"], lambda v: v in DNS_RCODES or (isinstance(v, str) and v.isdigit()), "a Suricata rcode name or a decimal number")
        for i, q in enumerate(dns.get("query") or []):
            value_in(out, where, obj, ["dns", "query", i, "rrtype"], rr, "an rrtype name or a decimal number")
        for i, a in enumerate(dns.get("answers") or []):
            value_in(out, where, obj, ["dns", "answers", i, "rrtype"], rr, "an rrtype name or a decimal number")


def check_file(path, validator, out):
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise SystemExit(f"check_eve.py: {path}: {e.strerror}") from None
    lines = 0
    with f:
        for n, line in enumerate(f, 1):
            where = f"{path}:{n}"
            if not line.strip():
                out.add("empty line", where, "(line)", "empty line")
                continue
            lines += 1
            try:
                obj = json.loads(line)
            except ValueError as e:
                out.add("not JSON", where, "(line)", f"not JSON: {e}")
                continue
            if not isinstance(obj, dict):
                out.add("not a JSON object", where, "(line)", "not a JSON object")
                continue
            schema_problems(validator, obj, where, out)
            semantic_problems(obj, where, out)
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", metavar="EVENTS.jsonl")
    ap.add_argument("--schema", default=str(DEFAULT_SCHEMA), help="Suricata's etc/schema.json")
    ap.add_argument("--examples", type=int, default=2, help="examples printed per kind")
    ap.add_argument("--all", action="store_true", help="print every problem, then the summary")
    args = ap.parse_args(argv)

    if not Path(args.schema).is_file():
        sys.stderr.write(f"check_eve.py: schema not found: {args.schema}\n")
        return 2
    validator = build_validator(args.schema)
    out = Problems()
    records = 0
    for path in args.files:
        records += check_file(path, validator, out)

    if args.all:
        for items in out.kinds.values():
            for item in items:
                print(item)
        print()
    if out.total:
        print(f"Problems by kind ({len(out.kinds)} kinds), most frequent first:")
        ranked = sorted(out.kinds.items(), key=lambda kv: -len(kv[1]))
        for kind, items in ranked:
            print(f"{len(items):6}  {kind}")
            for item in items[: args.examples]:
                print(f"          {item}")
    print(
        f"check_eve: {out.total} problems in {records} records of {len(args.files)} files"
        f" ({len(out.kinds)} kinds)"
    )
    return 1 if out.total else 0


if __name__ == "__main__":
    sys.exit(main())
