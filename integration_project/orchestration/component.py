"""SystemComponent: a system declared in a Dagster Components YAML file (`defs.yaml`).

Its attributes are the `System` model itself, so `dg check defs` validates the YAML with the same
schema as a Python declaration. Loaded through `dg.load_from_defs_folder`, a component contributes
its system's share of the landscape (its assets); the flows between systems (jobs, schedules,
sensors) come from `build_definitions` over the whole landscape, which the code location uses.
"""

import dagster as dg

from integration_project.model import System, load_landscape
from integration_project.orchestration.build import system_definitions


class SystemComponent(System, dg.Component, dg.Resolvable):
    """One system of the landscape, declared in YAML."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """This system's assets within the landscape of the package the file belongs to."""
        package = context.defs_module_name.rpartition(".")[0] or context.defs_module_name
        return system_definitions(load_landscape(package), self.name)
