"""Declarations: systems, data objects, bindings, and the landscape they make."""

from integration_project.model.api import Api, Auth
from integration_project.model.binding import Binding, Volume
from integration_project.model.data_object import DataObject
from integration_project.model.email import Email
from integration_project.model.landscape import Flow, Ingest, Landscape, Location
from integration_project.model.loader import load_landscape
from integration_project.model.system import System, Webhook

__all__ = [
    "Api", "Auth", "Binding", "DataObject", "Email", "Flow", "Ingest", "Landscape", "Location", "System", "Volume",
    "Webhook", "load_landscape",
]
