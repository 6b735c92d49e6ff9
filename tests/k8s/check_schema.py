#!/usr/bin/env python3
"""Validates documents against JSON Schemas with Python's jsonschema (run by
control/tests/crd.rs, which converts the YAML to JSON and sends the schemas generated
from the model, the CRDs' openAPIV3Schema with strict field validation written in).

stdin: {"schemas": {KIND: SCHEMA}, "documents": [{"name": NAME, "kind": KIND, "doc": DOC}]}
stdout: [{"name": NAME, "errors": ["path: message", ...]}], one entry per document,
        in order; a schema that is not itself valid JSON Schema is an error (exit 1).
"""
import json
import sys

import jsonschema

request = json.load(sys.stdin)
validators = {}
for kind, schema in request["schemas"].items():
    # OpenAPI v3's schema object is a subset of JSON Schema draft 4-7 (x-kubernetes-*
    # keys are ignored by validators, as annotations).
    jsonschema.Draft7Validator.check_schema(schema)
    validators[kind] = jsonschema.Draft7Validator(schema)

results = []
for d in request["documents"]:
    v = validators.get(d["kind"])
    if v is None:
        errors = ["no schema for kind %r" % d["kind"]]
    else:
        errors = [
            "%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(root)", e.message)
            for e in sorted(v.iter_errors(d["doc"]), key=lambda e: list(map(str, e.absolute_path)))
        ]
    results.append({"name": d["name"], "errors": errors})
json.dump(results, sys.stdout, indent=1)
