"""Load runbooks from YAML: validated, with file:line:column on every error."""

from responder.catalog.loader import check_directory, check_runbook, load_runbook, load_runbooks, runbook_warnings

__all__ = ["check_directory", "check_runbook", "load_runbook", "load_runbooks", "runbook_warnings"]
