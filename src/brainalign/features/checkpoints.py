"""Model families: one config entry with ``checkpoints`` becomes one model per checkpoint.

A training trajectory (or a size series) is written once in ``features.models``::

    effnet:
      architecture: efficientnet_lite0
      layers: [stage2, stage6]
      checkpoints:            # label -> weights, in training order
        a0: ckpt/alpha0.pth
        a50: ckpt/alpha50.pth
        a100: shipped

and validation (:func:`brainalign.config.validate_config`) expands it into the models
``effnet_a0``, ``effnet_a50``, ``effnet_a100``: each a plain model entry (the family's keys, with
``weights`` from its checkpoint) that also carries ``family`` (``effnet``), ``checkpoint`` (its
label) and ``checkpoint_index`` (its place in the given order). The workflow sees only the expanded
models, so each checkpoint gets exactly one feature-extraction job, whose layer files both encoding
and RSA read. A checkpoint may also be a mapping ``{weights, architecture, kwargs}`` that overrides
the family's architecture or constructor arguments: a size series (``efficientnet_lite0`` ...
``_lite2``, or one module with different widths) is a family like a trajectory. The layers are the
family's, so every member must have them.

The expansion is idempotent: an expanded entry (``family`` set, ``checkpoints`` null) is kept as it
is, so a configuration validated twice is the same.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from brainalign.errors import ConfigError

__all__ = ["CHECKPOINT_KEYS", "checkpoint_families", "expand_checkpoints"]

#: Keys an expanded model entry carries about its family (none of them changes the features).
CHECKPOINT_KEYS = ("family", "checkpoint", "checkpoint_index")

#: Keys of a checkpoint given as a mapping; the others come from the family's entry.
_OVERRIDE_KEYS = ("weights", "architecture", "kwargs")


def expand_checkpoints(models: Mapping[str, dict]) -> dict[str, dict]:
    """Replace every model with ``checkpoints`` by one model per checkpoint.

    Parameters
    ----------
    models : Mapping of str to dict
        ``features.models`` after schema validation (defaults filled): name -> entry.

    Returns
    -------
    models : dict of str to dict
        A deep copy in which an entry ``name`` with ``checkpoints`` ``{label: weights, ...}``
        is replaced, in place and in checkpoint order, by entries ``name_label``, each with
        ``weights`` (and ``architecture``/``kwargs`` where the checkpoint overrides them),
        ``checkpoints: None``, ``family: name``, ``checkpoint: label`` and
        ``checkpoint_index`` (0, 1, ... in the given order). Other entries are unchanged.

    Raises
    ------
    ConfigError
        An entry with neither ``weights`` nor ``checkpoints``, or with both; an empty
        ``checkpoints``; an expanded name that is already a model, or whose file-name label
        (:func:`brainalign.workflow.entity_label`) another model has; ``family`` written by hand
        without ``checkpoint`` and ``checkpoint_index``, or two members of a family with the
        same label or index.
    """
    from brainalign.workflow import entity_label

    out: dict[str, dict] = {}
    origin: dict[str, str] = {}  # expanded name -> the config key it came from
    for name, spec in models.items():
        key = f"features.models.{name}"
        checkpoints = spec.get("checkpoints")
        if checkpoints is None:
            if "weights" not in spec:
                raise ConfigError(
                    f"Config key '{key}' has no 'weights': expected 'weights' (shipped, random "
                    "or a local path) or 'checkpoints' (label -> weights, one model per "
                    "checkpoint). Add one of them."
                )
            _check_hand_written_family(name, spec)
            out[name] = copy.deepcopy(spec)
            origin[name] = key
            continue
        if "weights" in spec:
            raise ConfigError(
                f"Config key '{key}' sets both 'weights' ({spec['weights']!r}) and "
                f"'checkpoints' ({list(checkpoints)}): expected one of them (each checkpoint "
                "names its own weights). Remove 'weights', or add it as a checkpoint."
            )
        if not checkpoints:
            raise ConfigError(
                f"Config key '{key}.checkpoints' is empty: expected label -> weights for at "
                "least one checkpoint. List the checkpoints, or set 'weights' instead."
            )
        for k, (label, ckpt) in enumerate(checkpoints.items()):
            member = f"{name}_{label}"
            where = f"{key}.checkpoints.{label}"
            if member in models:
                raise ConfigError(
                    f"Config key '{where}' expands to the model '{member}', which "
                    f"'features.models' already has: expected new names. Rename the "
                    f"checkpoint label '{label}' or the model '{member}'."
                )
            entry = {k2: copy.deepcopy(v) for k2, v in spec.items() if k2 != "checkpoints"}
            ckpt = {"weights": ckpt} if isinstance(ckpt, str) else dict(ckpt)
            entry.update({k2: copy.deepcopy(ckpt[k2]) for k2 in _OVERRIDE_KEYS if k2 in ckpt})
            entry.update(checkpoints=None, family=name, checkpoint=str(label),
                         checkpoint_index=k)
            out[member] = entry
            origin[member] = where
    by_label: dict[str, str] = {}
    for member in out:
        label = entity_label(member)
        first = by_label.setdefault(label, member)
        # clashes between two hand-written models: check_model_labels says so
        if first != member and ".checkpoints." in origin[first] + origin[member]:
            raise ConfigError(
                f"Config keys '{origin[first]}' and '{origin[member]}' give the models "
                f"'{first}' and '{member}', which share the file-name label '{label}' "
                "(file names keep only letters and digits): expected models whose letters and "
                "digits differ. Rename a checkpoint label or a model."
            )
    _check_families(out)
    return out


def _check_hand_written_family(name: str, spec: Mapping) -> None:
    given = [k for k in CHECKPOINT_KEYS if spec.get(k) is not None]
    if given and len(given) < len(CHECKPOINT_KEYS):
        missing = [k for k in CHECKPOINT_KEYS if k not in given]
        raise ConfigError(
            f"Config key 'features.models.{name}' sets {given} but not {missing}: expected "
            f"all of {list(CHECKPOINT_KEYS)} or none (they are filled in from 'checkpoints'). "
            "List the family's members under 'checkpoints' of one entry instead."
        )


def _check_families(models: Mapping[str, dict]) -> None:
    seen: dict[tuple, str] = {}
    for name, spec in models.items():
        if spec.get("family") is None:
            continue
        for what in ("checkpoint", "checkpoint_index"):
            key = (spec["family"], what, spec[what])
            if key in seen:
                raise ConfigError(
                    f"Config keys 'features.models.{seen[key]}' and 'features.models.{name}' "
                    f"both are {what} {spec[what]!r} of family '{spec['family']}': expected "
                    f"each member of a family to have its own {what}. Fix one of them."
                )
            seen[key] = name


def checkpoint_families(models: Mapping[str, dict]) -> dict[str, list[dict]]:
    """The families of an expanded ``features.models``, members in checkpoint order.

    Parameters
    ----------
    models : Mapping of str to dict
        ``features.models`` of a validated configuration (:func:`expand_checkpoints` applied).

    Returns
    -------
    families : dict of str to list of dict
        Family name (sorted) -> one dict per member, ordered by ``checkpoint_index``:
        ``{"model": name, "checkpoint": label, "checkpoint_index": k}``. Models outside any
        family are left out; an empty dict when there is no family.
    """
    families: dict[str, list[dict]] = {}
    for name, spec in models.items():
        if spec.get("family") is not None:
            families.setdefault(spec["family"], []).append(
                {"model": name, "checkpoint": spec["checkpoint"],
                 "checkpoint_index": int(spec["checkpoint_index"])})
    return {f: sorted(m, key=lambda d: d["checkpoint_index"]) for f, m in sorted(families.items())}
