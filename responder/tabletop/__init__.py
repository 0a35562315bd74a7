"""Tabletop exercises: playbooks of scripted incidents run through the real service against the sandbox."""
