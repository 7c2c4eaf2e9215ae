"""Refresh the vendors' published contracts kept in tests/contracts/specs/ from their sources.

    python tests/contracts/refresh.py --hubspot-repo DIR [vendor ...]   (`make specs`)

Each vendor's source is pinned below (a repository commit or a package version); a refresh takes
that exact version, keeps only the operations and types the project uses, strips the prose
(descriptions, summaries, examples) and writes the files beside their README. Change a pin here,
run it, read the diff, and update the README's origin line.

- hubspot: a git directory of HubSpot/HubSpot-public-api-spec-collection (`--hubspot-repo`, or
  HUBSPOT_SPECS_REPO): git has the pinned commit.
- shopify: the npm package @shopify/dev-mcp (`npm pack`).
- zendesk: the PyPI package airbyte-source-zendesk-support (`pip download`).
- mailchimp: the PyPI package mailchimp-marketing (`pip download`): its API classes are generated
  from Mailchimp's OpenAPI document; the operations we call are read back out of them.
- stripe: nothing is copied: the `stripe` package pinned in uv.lock is a dev dependency and its
  `stripe.params` types are read where they are installed.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECS = Path(__file__).parent / "specs"
SANDBOX_SPECS = Path(__file__).resolve().parents[2] / "sandbox" / "integration_sandbox" / "specs"

HUBSPOT_REPO = "HubSpot/HubSpot-public-api-spec-collection"
HUBSPOT_COMMIT = "99893791383254f52aa07662baeb98aad65cc710"
HUBSPOT_VERSION = "2026-03"
HUBSPOT_FILES = {  # kept file -> path in the repository at HUBSPOT_COMMIT
    "contacts.json": f"PublicApiSpecs/CRM/Contacts/Rollouts/424/{HUBSPOT_VERSION}/contacts.json",
    "companies.json": f"PublicApiSpecs/CRM/Companies/Rollouts/424/{HUBSPOT_VERSION}/companies.json",
    "deals.json": f"PublicApiSpecs/CRM/Deals/Rollouts/424/{HUBSPOT_VERSION}/deals.json",
    "associations.json": f"PublicApiSpecs/CRM/Associations/Rollouts/130902/{HUBSPOT_VERSION}/associations.json",
}
# The operations the connector and the sandbox use (a path's every method is kept).
HUBSPOT_PATHS = re.compile(
    rf"^/crm/objects/{HUBSPOT_VERSION}/(contacts|companies|0-3)(/search|/batch/(read|update|upsert)|/\{{\w+\}})?$"
    rf"|^/crm/associations/{HUBSPOT_VERSION}/\{{fromObjectType\}}/\{{toObjectType\}}/batch/read$")

SHOPIFY_PACKAGE, SHOPIFY_VERSION, SHOPIFY_API = "@shopify/dev-mcp", "1.16.0", "2026-10"
ZENDESK_PACKAGE, ZENDESK_VERSION = "airbyte-source-zendesk-support", "4.9.1"
ZENDESK_SCHEMAS = ("users", "tickets")
MAILCHIMP_PACKAGE, MAILCHIMP_VERSION = "mailchimp-marketing", "3.0.80"
MAILCHIMP_OPERATIONS = ("get_list_members_info", "set_list_member", "update_list_member", "get_list_merge_fields",
                        "add_list_merge_field", "delete_list_member", "delete_list_member_permanent")  # the SDK's methods we mirror

PROSE = {"summary", "example", "examples", "externalDocs", "tags"}  # `description` stays, empty (a response needs one)


NAME_MAPS = {"properties", "schemas", "responses", "parameters", "securitySchemes", "paths", "content",
             "headers", "scopes"}  # maps whose keys are names, not keywords


def strip(node: Any, names: bool = False) -> Any:
    """A copy without prose keys and vendor extensions; `names`: the node's keys are names (a
    schema's `properties`, say), kept whatever they are called."""
    if isinstance(node, list):
        return [strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: "" if key == "description" and not names else strip(value, not names and key in NAME_MAPS)
            for key, value in node.items() if names or key not in PROSE and not key.startswith("x-")}


def refs(node: Any) -> Iterable[str]:
    """Every `$ref` target under a node."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def prune_openapi(doc: dict[str, Any], keep: re.Pattern[str]) -> dict[str, Any]:
    """The document with only the paths `keep` matches and the components they reach."""
    paths = {p: ops for p, ops in doc["paths"].items() if keep.search(p)}
    components: dict[str, dict[str, Any]] = {}
    todo = list(refs(paths)) + list(refs(doc.get("security", [])))
    while todo:
        ref = todo.pop()
        _, _, kind, name = ref.split("/", 3)
        if name in components.get(kind, {}):
            continue
        target = doc["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        todo += refs(target)
    components["securitySchemes"] = doc["components"].get("securitySchemes", {})
    for scheme in components["securitySchemes"].values():  # thousands of scope names: only ours matter
        for flow in scheme.get("flows", {}).values():
            flow["scopes"] = {s: "" for s in flow.get("scopes", {}) if s.startswith("crm.objects.")}
    kept = {**doc, "paths": paths, "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())}}
    return strip(kept)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"wrote {path.relative_to(SPECS.parent.parent.parent)} ({path.stat().st_size:,} bytes)")


def hubspot(repo: Path) -> None:
    """The CRM object and association specs of HUBSPOT_VERSION at HUBSPOT_COMMIT."""
    for name, path in HUBSPOT_FILES.items():
        text = subprocess.run(["git", "--git-dir", str(repo), "show", f"{HUBSPOT_COMMIT}:{path}"],
                              check=True, capture_output=True, text=True).stdout
        write_json(SPECS / "hubspot" / name, prune_openapi(json.loads(text), HUBSPOT_PATHS))


def npm_file(package: str, version: str, member: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", f"{package}@{version}"], cwd=tmp, check=True,
                       capture_output=True)
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as tar:
            extracted = tar.extractfile(f"package/{member}")
            assert extracted is not None, member
            return extracted.read()


def pip_wheel(package: str, version: str) -> zipfile.ZipFile:
    tmp = Path(tempfile.mkdtemp())
    pip = [sys.executable, "-m", "pip"] if shutil.which("pip") is None else ["pip"]
    local = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "pip"
    if local.exists():
        pip = [str(local)]
    subprocess.run([*pip, "download", "--quiet", "--no-deps", f"{package}=={version}", "-d", str(tmp)],
                   check=True)
    return zipfile.ZipFile(next(tmp.glob("*.whl")))


def shopify() -> None:
    """The GraphQL Admin API's introspection result for SHOPIFY_API, without descriptions, gzipped."""
    raw = gzip.decompress(npm_file(SHOPIFY_PACKAGE, SHOPIFY_VERSION, f"dist/data/admin_{SHOPIFY_API}.json.gz"))
    schema = json.loads(raw)

    def bare(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: bare(v) for k, v in node.items() if k != "description"}
        if isinstance(node, list):
            return [bare(v) for v in node]
        return node

    out = SPECS / "shopify" / f"admin_{SHOPIFY_API}.json.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(json.dumps(bare(schema), separators=(",", ":"), sort_keys=True).encode())
    out.write_bytes(buffer.getvalue())
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    served = SANDBOX_SPECS / f"shopify_admin_{SHOPIFY_API}.json.gz"  # the sandbox shop serves the same schema
    served.write_bytes(buffer.getvalue())
    print(f"wrote {served}")


def zendesk() -> None:
    """The record schemas of users and tickets (with the shared ones they reference) as the
    connector records them, and the facts of its manifest we check requests against."""
    wheel = pip_wheel(ZENDESK_PACKAGE, ZENDESK_VERSION)
    base = "source_zendesk_support/"
    for name in wheel.namelist():
        if name.startswith(base + "schemas/") and name.endswith(".json"):
            stem = name.removeprefix(base + "schemas/")
            if stem.removesuffix(".json") in ZENDESK_SCHEMAS or stem.startswith("shared/"):
                write_json(SPECS / "zendesk" / "schemas" / stem, json.loads(wheel.read(name)))


def _sdk_operations(source: str) -> dict[str, dict[str, Any]]:
    """Method name -> the operation it sends: HTTP method, path template, path and query
    parameters, whether it sends a body; read from the generated SDK's source."""
    found: dict[str, dict[str, Any]] = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.FunctionDef) and node.name.endswith("_with_http_info")):
            continue
        text = ast.unparse(node)
        call = re.search(r"call_api\('([^']+)', '([A-Z]+)'", text)
        if call is None:
            continue
        found[node.name.removesuffix("_with_http_info")] = {
            "method": call.group(2), "path": call.group(1),
            "path_params": re.findall(r"path_params\['(\w+)'\]", text),
            "query_params": sorted(set(re.findall(r"query_params\.append\(\('([\w\[\].]+)'", text))),
            "required": sorted(set(re.findall(r"if (?:self\.api_client\.client_side_validation and )?\(?'(\w+)' not in params",
                                              text))),
            "body": "body_params = params['body']" in text,
        }
    return found


def mailchimp() -> None:
    """The operations we call, as the SDK generated from Mailchimp's OpenAPI document sends them."""
    wheel = pip_wheel(MAILCHIMP_PACKAGE, MAILCHIMP_VERSION)
    ops = _sdk_operations(wheel.read("mailchimp_marketing/api/lists_api.py").decode())
    write_json(SPECS / "mailchimp" / "operations.json", {name: ops[name] for name in MAILCHIMP_OPERATIONS})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vendors", nargs="*", default=["hubspot", "shopify", "zendesk", "mailchimp"])
    parser.add_argument("--hubspot-repo", type=Path, default=os.environ.get("HUBSPOT_SPECS_REPO"),
                        help=f"a git directory of {HUBSPOT_REPO} holding commit {HUBSPOT_COMMIT[:12]}")
    args = parser.parse_args()
    for vendor in args.vendors:
        if vendor == "hubspot":
            if args.hubspot_repo is None:
                parser.error(f"hubspot: give --hubspot-repo (a clone of {HUBSPOT_REPO})")
            hubspot(args.hubspot_repo)
        elif vendor in ("shopify", "zendesk", "mailchimp"):
            globals()[vendor]()
        else:
            parser.error(f"unknown vendor {vendor!r}")


if __name__ == "__main__":
    main()
