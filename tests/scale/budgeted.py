"""A code location for the scale-out tests: the example landscape, where the warehouse has a
request budget and takes orders through two flows: paid orders as declared (`inventory`), the
others through a second front of the same warehouse (`depot`, same URL and credentials). Two
flows, so the instance runs them at once; one host, so they share one budget and the same SKUs."""

from integration_project import Binding, System, build_definitions, load_landscape

BUDGET = 5.0  # requests a second to the warehouse: ~200 requests take 40 s, so the two flows overlap

landscape = load_landscape("definitions")
_inventory = landscape.systems["inventory"]
assert _inventory.api is not None
_api = _inventory.api.model_copy(update={"requests_per_second": BUDGET})
_orders = next(b for b in _inventory.bindings if b.object == "order")
landscape.systems["inventory"] = _inventory.model_copy(update={"api": _api, "bindings": [
    b.model_copy(update={"where": {"status": ["paid"]}}) if b is _orders else b for b in _inventory.bindings]})
landscape.systems["depot"] = System(
    name="depot", title="Depot", vendor=_inventory.vendor, kind=_inventory.kind, owners=_inventory.owners,
    description="The warehouse again, taking the orders not yet paid.", api=_api,
    bindings=[Binding(object="order", role="consumer", purpose="Stock is reserved for unpaid orders too.",
                      resource="stock/adjustments", mode="realtime", mapping=_orders.mapping,
                      where={"status": ["pending", "refunded"]})])
defs = build_definitions(landscape)
