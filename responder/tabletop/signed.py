"""Signed scorecards: each card's signature, and a signed manifest of the whole document (`responder tabletop verify`).

A card's signature holds its own content; only the manifest holds the document together: which cards, in which
order, how many, and the run's overall status and exit code, so a card dropped, duplicated or reordered, or an
overall status changed, fails `verify` even though every card left is signed.

What is signed is a canonical form that survives ordinary JSON tools: sorted keys, no whitespace, UTF-8, and every
number as it parses back: an integral number within ±2^53 as an integer (`1.0` and `1` sign alike: jq writes one as
the other), any other as a float. So a document pretty-printed, re-indented or rewritten by Python's `json` or jq
still verifies; a changed value does not.

A signature checked against the document's own `public_key` proves integrity (nothing changed since that key signed
it), not origin: whoever rewrote the document could have signed it with a key of their own. `--public-key` (or
comparing the key id with the one the run printed) proves who signed it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from responder.errors import ConfigError
from responder.tabletop.grading import SIGNED_WITHOUT, Card
from responder.timeline.chain import canonical_json
from responder.timeline.checkpoint import Checker, Signer, key_id, load_public_key

EXACT = 2**53  # the integers a double holds exactly: beyond, a JSON tool may write either form


def _numbers(value: Any) -> Any:
    """`value` with every number as it parses back whatever wrote it: integral within ±2^53 an int, else a float."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT:
        return int(value)
    if isinstance(value, int) and abs(value) > EXACT:
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    """The bytes a signature covers: sorted keys, no whitespace, UTF-8, numbers normalised (`_numbers`)."""
    return canonical_json(_numbers(value))


def signed_part(card: Mapping[str, Any]) -> bytes:
    """What a card's signature covers: its canonical form without `incidents` and `signature` (a card as a JSON
    document, `--json` or scorecard.json, or `Card.model_dump(mode="json")`)."""
    return canonical({k: v for k, v in card.items() if k not in SIGNED_WITHOUT})


def _digest(card: Mapping[str, Any]) -> str:
    signature = card.get("signature")
    sig = signature.get("sig") if isinstance(signature, Mapping) else None
    return hashlib.sha256(str(sig).encode()).hexdigest() if isinstance(sig, str) else ""


def _overall(statuses: list[object]) -> tuple[str, int]:
    return ("FAIL", 1) if "FAIL" in statuses else ("PASS", 0)


class Manifest(BaseModel):
    """The signed table of contents of a run's document: what `verify` needs to tell a whole document from a cut one."""

    v: Literal[1] = 1
    key_id: str = Field(description="the run's signing key (the first 16 hex digits of its public key's SHA-256)")
    run_id: str = Field(description="this run's random id")
    started: float = Field(description="when the run started (epoch seconds, wall)")
    cards: list[dict[str, str]] = Field(description="each card in order: `playbook` and `sig_sha256`, the SHA-256 "
                                        "of its signature's `sig`")
    count: int = Field(description="how many cards")
    status: str = Field(description="the run's overall status: FAIL when a card FAILed, else PASS")
    exit: int = Field(description="the exit code `tabletop run` gave: 1 when FAIL, else 0")
    covers: str = Field(default="the manifest's canonical form without `sig` (sorted keys, no whitespace, UTF-8, an "
                        "integral number within ±2^53 as an integer)")
    sig: str = Field(default="", description="base64 Ed25519 signature")


def sign_manifest(cards: list[Card], signer: Signer, run_id: str, started: float) -> Manifest:
    """The manifest of signed `cards`, in their order, signed with the run's key."""
    docs = [c.model_dump(mode="json") for c in cards]
    status, code = _overall([c.status for c in cards])
    manifest = Manifest(key_id=signer.key_id, run_id=run_id, started=started, count=len(cards), status=status,
                        exit=code, cards=[{"playbook": d["playbook"], "sig_sha256": _digest(d)} for d in docs])
    manifest.sig = signer.sign(canonical(manifest.model_dump(mode="json", exclude={"sig"})))
    return manifest


def _manifest_problems(doc: Mapping[str, Any], cards: list[Any], checker: Checker) -> list[str]:
    """Why the document's manifest does not hold the document as it is now (empty when it does)."""
    manifest = doc.get("manifest")
    if not isinstance(manifest, Mapping):
        return ["no signed manifest: nothing shows the cards are all there, once each and in order"]
    body = {k: v for k, v in manifest.items() if k != "sig"}
    if not checker.verifies(str(manifest.get("key_id")), str(manifest.get("sig")), canonical(body)):
        return ["the manifest's signature does not hold: it was changed after it was signed, or another key signed it"]
    listed = [(e.get("playbook"), e.get("sig_sha256")) if isinstance(e, Mapping) else (None, None)
              for e in manifest.get("cards") or []]
    present = [(c.get("playbook"), _digest(c)) if isinstance(c, Mapping) else (None, "") for c in cards]
    out = []
    if manifest.get("count") != len(cards):
        out.append(f"the run signed {manifest.get('count')} card(s), the document has {len(cards)}")
    if listed != present:
        out.append(f"the cards are not the ones the run signed, once each and in its order: signed "
                   f"{[p for p, _ in listed]}, found {[p for p, _ in present]}")
    status = _overall([c.get("status") if isinstance(c, Mapping) else None for c in cards])
    if (manifest.get("status"), manifest.get("exit")) != status:
        out.append(f"the run signed overall {manifest.get('status')} (exit {manifest.get('exit')}), the cards say "
                   f"{status[0]} (exit {status[1]})")
    return out


@dataclass
class Checked:
    """What `verify` found: the key checked against and whether it was given (origin) or the document's own
    (integrity only), each card with whether its signature holds, and the manifest's problems."""

    key_id: str
    given: bool
    cards: list[tuple[str, bool]] = field(default_factory=list)
    manifest: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every card's signature holds, and the manifest holds the document as it is."""
        return all(ok for _, ok in self.cards) and not self.manifest


def check_document(doc: object, public_key: str | None) -> Checked:
    """Each card's signature and the manifest of a `tabletop run --json` document or scorecard.json, against
    `public_key` when given, else the document's own (ConfigError when it is no such document: no cards, no key)."""
    cards = doc.get("cards") if isinstance(doc, Mapping) else None
    key = public_key or (doc.get("public_key") if isinstance(doc, Mapping) else None)
    if not isinstance(doc, Mapping) or not isinstance(cards, list) or not cards or not isinstance(key, str):
        raise ConfigError("not a `tabletop run --json` result or scorecard.json: it needs a non-empty `cards` and "
                          "`public_key`")
    checker = Checker.from_text(key)

    def holds(card: object) -> bool:
        sig = card.get("signature") if isinstance(card, Mapping) else None
        return isinstance(card, Mapping) and isinstance(sig, Mapping) and \
            checker.verifies(str(sig.get("key_id")), str(sig.get("sig")), signed_part(card))

    return Checked(key_id(load_public_key(key)), public_key is not None,
                   [(str(c.get("playbook")) if isinstance(c, Mapping) else "?", holds(c)) for c in cards],
                   _manifest_problems(doc, cards, checker))
