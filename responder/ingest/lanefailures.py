"""How a flow's lanes fail (responder/ingest/flow.py): the lanes' failure, the errors handlers announce (`failing`: a
dead letter not sent) and whether what the service fails with lets the chunks in hand finish (`drains`).

Only announced errors drain. Another error a lane fails with while they drain (a fence, a timeline failure) forbids
acting further: it ends the drain (the other lanes' chunks are cancelled at once) and is raised with them, in a
`Drained` group, whose later errors decide what the service does next (`serve_rejoining` rejoins after a fence found
so)."""

from __future__ import annotations

from responder.exception_groups import Drained, leaves


class Failures:
    """A flow's failures: the lanes' (`lane`), the first announced (`announced`), and every error either has been."""

    def __init__(self) -> None:
        self.lane: Exception | None = None  # the first lane failure, or a Drained group of it and what ended its drain
        self.announced: Exception | None = None  # the first error a handler announced
        self._announced: list[BaseException] = []  # every error announced: none forbids acting further
        self._been: list[BaseException] = []  # every value `error` had: what `submit` may have raised
        self.cut = False  # the chunks still in hand are being cancelled (`cut_short`)

    @property
    def error(self) -> Exception | None:
        """The lanes' failure, else the first error announced: what the flow fails with."""
        return self.lane if self.lane is not None else self.announced

    def announce(self, exc: Exception) -> None:
        """A handler met `exc`, which does not forbid acting further: no lane starts a chunk from now on."""
        self._announced.append(exc)
        if self.announced is None:
            self.announced = exc
            self._been.append(exc)

    def drains(self, exc: BaseException | None) -> bool:
        """Whether `exc` is made only of announced errors: the chunks in hand may finish."""
        return exc is not None and all(self._holds(self._announced, leaf) for leaf in leaves(exc))

    def owns(self, exc: BaseException) -> bool:
        """Whether `exc` is (or was) this flow's failure: raised by `submit`, not the poll loop's own."""
        return self._holds(self._been, exc)

    def cut_short(self) -> None:
        """The chunks still in hand are cancelled (the drain deadline passed, or the stop is at once): an error a lane
        raises from now on is the cancel's doing, and ends no drain (it does not become a `Drained` group's)."""
        self.cut = True

    def lane_failed(self, exc: Exception) -> bool:
        """A lane failed with `exc`; whether the other lanes' chunks are to be cancelled at once (it may forbid acting
        further). The first failure is kept, except that one which does not drain ends a drain: the failure is then
        the drained one and `exc` together (`Drained`), unless `exc` already holds all of the drained one, or the
        chunks in hand were being cancelled (`cut_short`: the drain is over, and `exc` its cancel's doing)."""
        prior, drains = self.error, self.drains(exc)
        if prior is None or (self.lane is None and drains):
            self.lane = exc  # the first, or the announcing lane's own failure
        elif self.drains(prior) and not drains and not self.cut:
            held = list(leaves(exc))
            whole = all(self._holds(held, leaf) for leaf in leaves(prior))
            self.lane = exc if whole else Drained("lanes failed", [prior, exc])
        if self.lane is not None:
            self._been.append(self.lane)
        return not drains

    @staticmethod
    def _holds(errors: list[BaseException], exc: BaseException) -> bool:
        return any(e is exc for e in errors)
