"""The landscape's Dagster Components: a system (`SystemComponent`) or a data object
(`DataObjectComponent`) declared in a YAML file (`defs.yaml`) anywhere in the landscape package.

Their attributes are the declaration models themselves, so `dg check defs` validates the YAML with
the same schema as the landscape's loader. Loaded through `dg.load_from_defs_folder`, a system
contributes its share of the landscape (its assets); the flows between systems (jobs, schedules,
sensors) come from `build_definitions` over the whole landscape, which the code location uses.
`dg scaffold defs <type> <path>` writes a skeleton with every required field to fill in (in YAML,
or with `--format python` as a module the loader imports).
"""

import re

import dagster as dg

from integration_project.model import System, load_landscape
from integration_project.model.fields import DeclaredObject
from integration_project.orchestration.build import system_definitions

SYSTEM_SKELETON = """\
# A system of the landscape: who owns it, how to reach it, which objects it holds.
# Reference: docs/connectors.md of integration-project. Check it with `integrations check` or `dg check defs`.
type: {type}
attributes:
  name: {name}  # a lower-case identifier: its asset keys and jobs start with it
  title: {title}
  vendor: TODO the vendor or product
  kind: {name}  # Dagster kind: the icon the UI draws
  owners: [team:TODO]  # 'team:<name>' or an email address
  description: TODO what the business keeps in this system.
  # api: {{connector: rest, base_url: "https://api.example.com", version: "1",
  #        auth: {{type: bearer, token_env: {env}_TOKEN}}}}
  bindings: []
  # - object: customer  # an object of the landscape
  #   role: consumer  # or source: this system is the object's source of truth
  #   resource: customers  # the system's endpoint, table or file pattern
  #   purpose: One sentence saying why this binding exists.
  #   cron: "0 5 * * *"  # a batch consumer's schedule (or mode: realtime)
  #   mapping: {{id: id, email: email}}
"""

OBJECT_SKELETON = """\
# A canonical data object: the hub's shape of it, its steward and its keys.
# Reference: docs/objects.md of integration-project. Check it with `integrations check` or `dg check defs`.
type: {type}
attributes:
  name: {name}  # a lower-case identifier: its hub asset is hub/{name}
  description: TODO what one record is.
  owner: team:TODO  # the data steward: 'team:<name>' or an email address
  identity_key: id
  fields:
    id: {{type: string}}
    updated_at: {{type: datetime}}
    # email: {{type: email, pii: true}}
    # country: {{type: country}}
    # amount: {{type: decimal, scale: 2, min: 0}}
    # status: {{type: enum, values: [open, closed]}}
    # customer_id: {{type: reference, object: customer}}
  # match_keys: [email]
  # volume: {{min: 0, max: 10000}}  # records per run each consumer expects
  # freshness_minutes: 60
"""


SYSTEM_MODULE = '''\
"""{title}: a system of the landscape (reference: docs/connectors.md of integration-project)."""

from integration_project import Binding, System

{name} = System(
    name="{name}",  # a lower-case identifier: its asset keys and jobs start with it
    title="{title}",
    vendor="TODO the vendor or product",
    kind="{name}",  # Dagster kind: the icon the UI draws
    owners=["team:TODO"],  # 'team:<name>' or an email address
    description="TODO what the business keeps in this system.",
    bindings=[
        # Binding(object="customer", role="consumer", resource="customers", cron="0 5 * * *",
        #         purpose="One sentence saying why this binding exists.", mapping={{"id": "id"}}),
    ],
)
'''

OBJECT_MODULE = '''\
"""{title}: a canonical data object (reference: docs/objects.md of integration-project)."""

from datetime import datetime

from pydantic import BaseModel

from integration_project import DataObject


class {model}(BaseModel):
    """TODO what one record is."""

    id: str
    updated_at: datetime


{name} = DataObject(
    name="{name}", model={model}, owner="team:TODO", identity_key="id",  # owner: the data steward
    description="TODO what one record is.",
)
'''


class _Skeleton(dg.Scaffolder):
    """Writes the declaration with its required fields as placeholders, named after the target folder:
    `defs.yaml`, or with `--format python` a module `<name>.py` the landscape's loader imports."""

    yaml_text = python_text = ""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        """Write the skeleton into the target folder."""
        name = re.sub(r"[^a-z0-9_]", "_", request.target_path.name.lower()).lstrip("_0123456789") or "todo"
        words = {"type": request.type_name, "name": name, "title": name.replace("_", " ").capitalize(),
                 "env": name.upper(), "model": "".join(part.title() for part in name.split("_"))}
        request.target_path.mkdir(parents=True, exist_ok=True)
        if request.scaffold_format == "python":
            (request.target_path / f"{name}.py").write_text(self.python_text.format(**words))
        else:
            (request.target_path / "defs.yaml").write_text(self.yaml_text.format(**words))


class _SystemSkeleton(_Skeleton):
    yaml_text, python_text = SYSTEM_SKELETON, SYSTEM_MODULE


class _ObjectSkeleton(_Skeleton):
    yaml_text, python_text = OBJECT_SKELETON, OBJECT_MODULE


@dg.scaffold_with(_SystemSkeleton)
class SystemComponent(System, dg.Component, dg.Resolvable):
    """One system of the landscape, declared in YAML."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """This system's assets within the landscape of the package the file belongs to."""
        package = context.defs_module_name.rpartition(".")[0] or context.defs_module_name
        return system_definitions(load_landscape(package), self.name)


@dg.scaffold_with(_ObjectSkeleton)
class DataObjectComponent(DeclaredObject, dg.Component, dg.Resolvable):
    """One canonical data object of the landscape, declared in YAML by its fields."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """Nothing of its own: its assets are the share of its source and its consumers."""
        return dg.Definitions()
