"""Where each node's page lives in a built site, and relative links between pages.

The layout is part of the public contract: an asset's page is `assets/<key path>.html`, so the
framework can set `integration/docs_url` to `<docs base URL>/assets/<key path>.html`.
"""

import re


def slug(text: str) -> str:
    """A file- and anchor-safe form of a name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "_"


def page_of(nid: str) -> str:
    """The site path (from the site root, with any #anchor) of a node's page."""
    kind, _, name = nid.partition(":")
    if kind == "system":
        return f"systems/{slug(name)}.html"
    if kind == "object":
        return f"objects/{slug(name)}.html"
    if kind == "flow":
        return f"flows/{slug(name)}.html"
    if kind == "asset":
        return "assets/" + "/".join(slug(p) for p in name.split("/")) + ".html"
    if kind == "check":
        asset, _, check = name.rpartition(":")
        return page_of(f"asset:{asset}") + f"#check-{slug(check)}"
    if kind in ("schedule", "sensor", "job"):
        return f"triggers.html#{kind}-{slug(name)}"
    if kind == "owner":
        return f"owners.html#owner-{slug(name)}"
    if kind == "impact":
        return f"impact/{slug(name)}.html"
    return "index.html"


def relative(path: str, from_page: str) -> str:
    """A link from one site page to another site path, relative so file:// works."""
    target, _, anchor = path.partition("#")
    here, there = from_page.split("/")[:-1], target.split("/")
    common = 0
    while common < len(here) and common < len(there) - 1 and here[common] == there[common]:
        common += 1
    rel = "/".join([".."] * (len(here) - common) + there[common:]) or "."
    return rel + (f"#{anchor}" if anchor else "")
