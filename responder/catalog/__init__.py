"""Load runbooks from YAML: validated, with file:line:column on every error."""

from responder.catalog.loader import check_directory, check_runbook, directory_warnings, load_runbook, load_runbooks

__all__ = ["check_directory", "check_runbook", "directory_warnings", "load_runbook", "load_runbooks"]
