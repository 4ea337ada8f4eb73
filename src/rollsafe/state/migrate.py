"""``rollsafe state migrate``: copy a journal (and key/value state) from one store to another.

Idempotent: a record the target lacks is inserted; one it holds is replaced only when the
target's is still in progress and the source's is finished (the source saw the end of a
deploy the target missed); every other record is left as it is. A key/value entry the
target lacks is copied; one it has is the target's own newer state and is kept. Running it
twice copies nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollsafe.state.base import StateStore

__all__ = ["MigrateCounts", "migrate_state"]

#: records read per environment: more than any journal holds
_ALL = 10**9


@dataclass
class MigrateCounts:
    """What ``migrate_state`` did: journal records, then key/value entries."""

    copied: int = 0
    updated: int = 0
    unchanged: int = 0
    kv_copied: int = 0
    kv_unchanged: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


def migrate_state(source: StateStore, target: StateStore) -> MigrateCounts:
    """Copy every record and key/value entry of ``source`` into ``target`` (see above)."""
    counts = MigrateCounts()
    for env in source.environments():
        # oldest first: a target read meanwhile shows its history growing in order
        for record in reversed(source.list_records(env, None, _ALL)):
            current = target.get_record(record.id)
            if current is None:
                target.save_record(record)
                counts.copied += 1
            elif current.in_progress and not record.in_progress:
                target.save_record(record)
                counts.updated += 1
            else:
                counts.unchanged += 1
    for namespace in source.kv_namespaces():
        for key, (value, _version) in source.kv_list(namespace).items():
            if target.kv_get(namespace, key) is None:
                target.kv_put(namespace, key, value, expect_version=0)
                counts.kv_copied += 1
            else:
                counts.kv_unchanged += 1
    return counts
