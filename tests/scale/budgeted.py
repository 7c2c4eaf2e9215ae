"""A code location for the scale-out tests: the example landscape, with a request budget on the
warehouse (which declares none), so that two workers' deliveries share one budget."""

from integration_project import build_definitions, load_landscape

BUDGET = 20.0  # requests a second to the warehouse

landscape = load_landscape("definitions")  # the package
_inventory = landscape.systems["inventory"]
assert _inventory.api is not None
landscape.systems["inventory"] = _inventory.model_copy(
    update={"api": _inventory.api.model_copy(update={"requests_per_second": BUDGET})})
defs = build_definitions(landscape)
