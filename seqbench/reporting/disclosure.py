"""What every report must say about its run before any number: what is missing and why, the
protocol each pair actually ran, and which copy of each dataset the figures come from."""

from __future__ import annotations

from seqbench.reporting.query import (
    config_of,
    dataset_info_of,
    group_note,
    group_pairs,
    group_status,
    ok_pairs,
    pairs_of,
)
from seqbench.schema.types import PairRecord, RunResults

PARTIAL_TITLE = "PARTIAL RUN"
#: The protocol fields of a pair's params, in the order shown.
PROTOCOL_KEYS = (("epochs", "at most {} epochs"), ("patience", "patience {}"), ("lr_schedule", "{} schedule"),
                 ("batch_size", "batch {}"))


def missing_lines(results: RunResults) -> list[str]:
    """One line per thing the run planned or wanted but has no finished result for, with why:
    models and datasets left out as unavailable, pairs skipped, failed or diverged, and planned
    pairs with no record (the run was interrupted before them). Empty for a complete run."""
    lines = [f"{u.get('kind', '?')} {u.get('name', '?')}: not run here ({u.get('reason', 'no reason recorded')})"
             for u in config_of(results).get("unavailable", []) if isinstance(u, dict)]
    pairs = pairs_of(results)
    for (model, dataset), group in group_pairs(pairs).items():
        bad = [p for p in group if p.get("status") != "ok"]
        if bad:
            seeds = ",".join(str(p["seed"]) for p in bad)
            lines.append(f"{model} on {dataset}, seed{'s' * (len(bad) > 1)} {seeds}: {group_status(bad)}"
                         f" ({group_note(bad) or 'no reason recorded'})")
    recorded = {(p["model"], p["dataset"], p["seed"]) for p in pairs}
    config = config_of(results)
    planned = [(m, d, s) for d in config.get("datasets") or [] for m in config.get("models") or []
               for s in config.get("seeds") or []]
    never = [key for key in planned if key not in recorded]
    if never:
        shown = ", ".join(f"{m} on {d} seed {s}" for m, d, s in never[:8]) + (" …" if len(never) > 8 else "")
        lines.append(f"{len(never)} planned pair(s) never ran (the run was interrupted or is still running): {shown}")
    return lines


def partial_note(results: RunResults) -> str | None:
    """``PARTIAL RUN: n things missing`` heading line, or None for a complete run."""
    lines = missing_lines(results)
    return f"{PARTIAL_TITLE}: {len(lines)} item(s) missing; the figures cover only what finished." if lines else None


def partial_markdown(results: RunResults) -> str:
    """The warning block at the top of ``summary.md`` ("" for a complete run)."""
    note = partial_note(results)
    if note is None:
        return ""
    return f"**{note}**\n\n" + "".join(f"- {line}\n" for line in missing_lines(results)) + "\n"


def protocol_of(pair: PairRecord) -> str:
    """The protocol one pair ran, from its own params: ``at most 30 epochs, patience 8, cosine schedule, batch 128``."""
    params = pair.get("params") or {}
    return ", ".join(text.format(params[key]) for key, text in PROTOCOL_KEYS if params.get(key) is not None)


def protocol_lines(results: RunResults) -> list[str]:
    """Each distinct protocol of the run's pairs, with the model × dataset pairs that ran it."""
    by_protocol: dict[str, list[str]] = {}
    for (model, dataset), group in group_pairs(pairs_of(results)).items():
        for protocol in dict.fromkeys(protocol_of(p) for p in ok_pairs(group) or group):
            if protocol:
                by_protocol.setdefault(protocol, []).append(f"{model} on {dataset}")
    return [f"{', '.join(who)}: {protocol}" for protocol, who in by_protocol.items()]


# --- provenance --------------------------------------------------------------------------------


def provenance_label(dataset: str, fingerprint: str | None, recorded: str | None = None) -> str | None:
    """The label of the data copy a figure comes from: as recorded in the pair, else as a built-in
    dataset declares it for this fingerprint (``CIFAR-10 dev split``); None when nothing is known."""
    if recorded:
        return recorded
    from seqbench.datasets.catalog import DATASETS

    defn = DATASETS.get(dataset)
    return None if defn is None or fingerprint is None else dict(defn.provenance).get(fingerprint)


def data_copies(results: RunResults) -> dict[str, tuple[str | None, str | None]]:
    """Per dataset of the run's pairs: (fingerprint, provenance label)."""
    copies: dict[str, tuple[str | None, str | None]] = {}
    for pair in pairs_of(results):
        info = dataset_info_of(pair)
        fingerprint = info.get("fingerprint")
        if pair["dataset"] not in copies or (fingerprint and copies[pair["dataset"]][0] is None):
            label = provenance_label(pair["dataset"], fingerprint, info.get("provenance"))
            copies[pair["dataset"]] = (fingerprint, label)
    return copies


def dataset_title(dataset: str, results_list: list[RunResults]) -> str:
    """``cifar10 (CIFAR-10 dev split)``, or the name alone when the copy declares no label."""
    for results in results_list:
        _, label = data_copies(results).get(dataset, (None, None))
        if label:
            return f"{dataset} ({label})"
    return dataset


def data_lines(results: RunResults) -> list[str]:
    """``cifar10 — CIFAR-10 dev split — sha256:3ec83040d825…`` per dataset."""
    return [" — ".join(x for x in (name, label, fingerprint) if x)
            for name, (fingerprint, label) in data_copies(results).items()]
