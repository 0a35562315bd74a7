"""`responder intake`: the HTTP front door for SIEM webhooks, in front of the alert topic."""

from responder.intake.app import Intake, create_app

__all__ = ["Intake", "create_app"]
