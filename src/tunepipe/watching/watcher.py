"""The watch loop: each poll lists the snapshots, and each new complete one starts exactly one run.

For each complete snapshot the watcher takes its fingerprint (the fingerprint step's: names,
generations and checksums from the listing on an object store, file hashes on a local folder),
claims the snapshot's record (:mod:`tunepipe.watching.records`), checks the snapshot against the
champion's schema (:mod:`tunepipe.watching.guard`), starts the run under a name derived from the
fingerprint, and links the run into the record. A snapshot seen again (same fingerprint) finds
its record and starts nothing; a snapshot whose data changed is new data and gets its own run.

Errors: a store or API request that keeps failing with transient errors after the bounded
retries (:class:`~tunepipe.errors.RetriesExhausted`) ends the poll with a warning and the next
poll tries again; a refusal (403, a missing bucket, a rejected run) stops the watcher with one
clear error. A snapshot that cannot be fingerprinted (emptied meanwhile) is reported and skipped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tunepipe.data.sources import fingerprint
from tunepipe.errors import DataError, RetriesExhausted
from tunepipe.storage.objectstore import PreconditionFailed
from tunepipe.watching.records import CLAIMED, REFUSED, SKIPPED, STARTED, Record, Records, Slot, VersionToken
from tunepipe.watching.snapshots import Completeness, Snapshot, list_snapshots

if TYPE_CHECKING:
    from tunepipe.watching.guard import Guard  # pandas: imported by the caller that builds one

log = logging.getLogger(__name__)
RUN_NAME_HASH_CHARS = 16  # 64 bits of the fingerprint: no two snapshots of one location share a name


class Launcher(Protocol):
    """Starts runs and finds them again by name (Kubeflow Pipelines, or local runs)."""

    def find(self, run_name: str) -> str | None:
        """The id of the run named ``run_name``, if one was started; None if none was."""

    def launch(self, run_name: str, snapshot_uri: str) -> str:
        """Starts the run of ``snapshot_uri`` named ``run_name``; returns its id."""


def run_name_for(prefix: str, fingerprint_text: str) -> str:
    """``<prefix>-<store tag>-<16 hex digits of the fingerprint>``: the same snapshot, the same name."""
    tag, _, digest = fingerprint_text.partition(":")
    return f"{prefix}-{tag}-{digest[:RUN_NAME_HASH_CHARS]}"


def watcher_identity(name: str | None = None) -> str:
    """``<name or host>/<pid>-<random>``: unique to this process, so a claim it left in an
    earlier poll can be told from another watcher's."""
    return f"{name or socket.gethostname()}/{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass
class Outcome:
    """What one poll did with one snapshot (``action``: started, linked, known, refused, busy, waiting, unreadable)."""

    snapshot: str
    action: str
    detail: str = ""
    run_id: str | None = None

    def line(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        return f"watch: {self.snapshot}: {self.action}{run}{': ' + self.detail if self.detail else ''}"


@dataclass
class Watcher:
    """Follows one location; :meth:`poll` handles every snapshot once, :meth:`run` polls forever.

    Args:
        location: The watched folder or prefix (its sub-folders are the snapshots).
        records: Where the claims live (:func:`tunepipe.watching.records.records_for`).
        launcher: Starts the runs.
        completeness: Marker or quiet period (:class:`~tunepipe.watching.snapshots.Completeness`).
        guard: The champion whose schema a snapshot must keep; None: no check.
        run_prefix: The first part of each run's name (default ``tunepipe-watch``).
        identity: Who claims (default :func:`watcher_identity`).
        lease_seconds: A claim older than half of this is not submitted by its holder (it
            re-checks first), so no other watcher can have taken it over (their lease is whole).
        clock: Seconds since the epoch (claims are compared across machines).
        say: Where each outcome line goes (default: the log).
    """

    location: str
    records: Records
    launcher: Launcher
    completeness: Completeness = field(default_factory=Completeness)
    guard: Guard | None = None
    run_prefix: str = "tunepipe-watch"
    identity: str = field(default_factory=watcher_identity)
    lease_seconds: float = 600.0
    clock: Callable[[], float] = time.time
    say: Callable[[str], None] = log.info
    healthy_at: float = 0.0
    _fingerprints: dict[tuple[str, tuple[object, ...]], str] = field(default_factory=dict)
    _reported: dict[str, str] = field(default_factory=dict)
    _settled: dict[str, Outcome] = field(default_factory=dict)  # records known final: not read again

    def poll(self) -> list[Outcome]:
        """Lists the snapshots and handles each one; returns what was done (also said, once per change)."""
        outcomes = []
        for snapshot in list_snapshots(self.location):
            outcome = self._handle(snapshot)
            outcomes.append(outcome)
            if self._reported.get(outcome.snapshot) != outcome.line():  # say each state once, not every poll
                self._reported[outcome.snapshot] = outcome.line()
                self.say(outcome.line())
        self.healthy_at = time.monotonic()
        return outcomes

    def run(self, poll_seconds: float, stop: threading.Event, polls: int | None = None) -> None:
        """Polls every ``poll_seconds`` until ``stop`` is set (or ``polls`` polls are done).

        Raises:
            TunepipeError: A refusal (403, a missing bucket, a rejected run): the watcher stops.
        """
        done = 0
        while not stop.is_set():
            try:
                self.poll()
            except RetriesExhausted as error:
                self.say(f"watch: this poll failed after retries ({error}); trying again in {poll_seconds:g} s")
            done += 1
            if polls is not None and done >= polls:
                return
            stop.wait(poll_seconds)

    def _fingerprint(self, snapshot: Snapshot) -> str:
        """The snapshot's fingerprint, computed once per listing (a local folder's means hashing its files)."""
        key = (snapshot.name, snapshot.entries)
        if key not in self._fingerprints:
            self._fingerprints[key] = fingerprint(snapshot.uri)
        return self._fingerprints[key]

    def _handle(self, snapshot: Snapshot) -> Outcome:
        if not self.completeness.complete(snapshot):
            return Outcome(snapshot.uri, "waiting", self.completeness.waiting_for(snapshot))
        try:
            fingerprint_text = self._fingerprint(snapshot)
        except DataError as error:  # emptied or replaced between the listing and the fingerprint
            return Outcome(snapshot.uri, "unreadable", str(error))
        if fingerprint_text in self._settled:
            return self._settled[fingerprint_text]
        claim = self._record(snapshot, fingerprint_text, CLAIMED)
        with self.records.slot(fingerprint_text) as slot:
            if slot is None:
                return Outcome(snapshot.uri, "busy", "another watcher holds its claim")
            try:
                return self._claimed(snapshot, claim, slot)
            except PreconditionFailed:  # another watcher changed the record between our read and our write
                return Outcome(snapshot.uri, "busy", "another watcher updated its record first; read again next poll")

    def _record(self, snapshot: Snapshot, fingerprint_text: str, state: str, detail: str | None = None) -> Record:
        """A new record of ``snapshot`` in ``state``, by this watcher, now."""
        return Record(fingerprint_text, snapshot.uri, run_name_for(self.run_prefix, fingerprint_text), state,
                      self.identity, self.clock(), detail=detail)

    def _claimed(self, snapshot: Snapshot, claim: Record, slot: Slot) -> Outcome:
        """Claims the snapshot (or takes over a dead watcher's claim), then starts its run."""
        try:
            token = slot.create(claim)
        except PreconditionFailed:
            existing, token = slot.read()
            if existing.state != CLAIMED:
                return self._settle(claim, Outcome(snapshot.uri, "known", f"{existing.state} earlier "
                                                   f"({existing.detail or ''})", existing.run_id))
            found = self.launcher.find(claim.run_name)
            if found is not None:  # its watcher died after starting the run, before linking it
                slot.replace(claim.finished(STARTED, found, "linked after its watcher stopped"), token)
                return self._settle(claim, Outcome(snapshot.uri, "linked", "run started by a watcher that stopped "
                                                   "before recording it", found))
            if existing.watcher != self.identity and not slot.holder_gone(existing, self.clock()):
                return Outcome(snapshot.uri, "busy", f"claimed by {existing.watcher}")
            token = slot.replace(claim, token)
        return self._start(snapshot, claim, slot, token)

    def _start(self, snapshot: Snapshot, claim: Record, slot: Slot, token: VersionToken) -> Outcome:
        findings = self.guard.fatal_findings(snapshot) if self.guard else []
        if findings:
            slot.replace(claim.finished(REFUSED, detail="; ".join(findings)), token)
            return self._settle(claim, Outcome(snapshot.uri, "refused", "schema drifted from the champion's: "
                                               + "; ".join(findings)))
        if self.clock() - claim.claimed_at > self.lease_seconds / 2:  # slow: another may take over soon
            return Outcome(snapshot.uri, "busy", "claim too old to submit safely; trying again next poll")
        run_id = self.launcher.launch(claim.run_name, snapshot.uri)
        try:
            slot.replace(claim.finished(STARTED, run_id, claim.run_name), token)
        except PreconditionFailed:  # taken over meanwhile: lease far too short for this submit
            log.error("watch: %s: record changed while run %s was starting; check --lease", snapshot.uri, run_id)
        named = "" if run_id == claim.run_name else claim.run_name  # local runs: the name is the id
        return self._settle(claim, Outcome(snapshot.uri, "started", named, run_id))

    def _settle(self, claim: Record, outcome: Outcome) -> Outcome:
        """Remembers a final outcome: later polls repeat it without reading the record."""
        self._settled[claim.fingerprint] = outcome
        return outcome

    def skip_existing(self) -> list[Outcome]:
        """Records every snapshot complete now as skipped (``--skip-existing``): only later ones start runs."""
        skipped = []
        for snapshot in list_snapshots(self.location):
            if not self.completeness.complete(snapshot):
                continue
            fingerprint_text = self._fingerprint(snapshot)
            record = self._record(snapshot, fingerprint_text, SKIPPED,
                                  "there before the watcher started (--skip-existing)")
            with self.records.slot(fingerprint_text) as slot:
                if slot is None:
                    continue
                try:
                    slot.create(record)
                    skipped.append(Outcome(snapshot.uri, "skipped", record.detail or ""))
                except PreconditionFailed:
                    continue
        return skipped
