"""The example business's code location: `dagster dev` and workspace.yaml load `defs` from here."""

from integration_project import build_definitions, load_landscape

defs = build_definitions(load_landscape("definitions"))
