"""Configuration: schema validation with "did you mean ...?" hints, defaults, cross-field checks."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from brainalign.errors import ConfigError

__all__ = ["load_schema", "validate_config", "load_config", "resolve_paths"]


def load_schema() -> dict:
    """Return the configuration JSON Schema shipped with the package.

    Returns
    -------
    schema : dict
        JSON Schema (draft 2020-12) of the configuration.
    """
    text = resources.files("brainalign").joinpath("data/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _key_path(path: Any) -> str:
    return ".".join(str(p) for p in path)


def _subschema(schema: dict, path: list) -> dict:
    node = schema
    for part in path:
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return {}
    return node


def _unknown_key_messages(config: Any, schema: dict, path: list) -> list[str]:
    """Find keys not allowed by ``additionalProperties: false`` and suggest close names."""
    messages = []
    if not isinstance(config, Mapping):
        return messages
    node = _subschema(schema, path)
    props = node.get("properties", {})
    for key, value in config.items():
        if key in props:
            messages += _unknown_key_messages(value, schema, [*path, key])
        elif isinstance(node.get("additionalProperties"), dict):
            messages += _unknown_key_messages(value, schema, [*path, key])
        elif node.get("additionalProperties") is False:
            full = _key_path([*path, key])
            close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
            hint = (
                f" Did you mean '{_key_path([*path, close[0]])}'?"
                if close
                else f" Allowed keys here: {', '.join(sorted(props))}."
            )
            messages.append(f"Unknown key '{full}' in the configuration.{hint}")
    return messages


def _fill_defaults(config: dict, schema: dict) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if key not in config and sub.get("type") == "object" and "required" not in sub:
            config[key] = {}
        if isinstance(config.get(key), dict):
            _fill_defaults(config[key], sub)
            if isinstance(sub.get("additionalProperties"), dict):
                for value in config[key].values():
                    if isinstance(value, dict):
                        _fill_defaults(value, sub["additionalProperties"])


def validate_config(config: Mapping, *, base_dir: str | Path = ".") -> dict:
    """Validate a configuration, fill in defaults and run the cross-field checks.

    Parameters
    ----------
    config : Mapping
        The configuration as loaded from YAML (Snakemake's ``config``).
    base_dir : str or Path
        Directory that relative paths in the configuration are relative to.

    Returns
    -------
    config : dict
        A validated deep copy with every default filled in.

    Raises
    ------
    ConfigError
        On an unknown key (with the closest allowed name), a wrong type or value, or
        inconsistent values (e.g. a layer the architecture does not have).
    """
    schema = load_schema()
    config = copy.deepcopy(dict(config))
    unknown = _unknown_key_messages(config, schema, [])
    if unknown:
        raise ConfigError(" ".join(unknown))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = _key_path(err.absolute_path) or "<top level>"
        _raise_for_entity_prefix(err)
        raise ConfigError(
            f"Invalid value for config key '{where}': {err.message}. "
            f"Fix it in your config file (see config/README.md)."
        )
    _fill_defaults(config, schema)
    from brainalign.features.checkpoints import expand_checkpoints

    # a family with checkpoints -> one model per checkpoint (the rules see only those)
    config["features"]["models"] = expand_checkpoints(config["features"]["models"])
    _substitute_data_dir(config)
    _check_cross_fields(config, Path(base_dir))
    return _sorted_keys(config)


#: Config keys holding BIDS entity labels, and the prefix users sometimes write by mistake.
_ENTITY_PREFIXES = {("bids", "participant_label"): "sub-", ("bids", "tasks"): "task-",
                    ("bids", "sessions"): "ses-"}


def _raise_for_entity_prefix(err: jsonschema.ValidationError) -> None:
    """A label written with its entity prefix ('sub-01'): say to drop the prefix."""
    path = tuple(err.absolute_path)
    prefix = _ENTITY_PREFIXES.get(path[:2])
    if prefix and isinstance(err.instance, str) and err.instance.startswith(prefix):
        key = ".".join(map(str, path[:2]))
        raise ConfigError(
            f"Config key '{key}' lists '{err.instance}': expected labels without the "
            f"'{prefix}' prefix. Write '{err.instance.removeprefix(prefix)}'."
        )


def _sorted_keys(node: Any) -> Any:
    """Sort mapping keys recursively (lists keep their order).

    Rules receive config slices as ``params``; with sorted keys, reordering a YAML file does not
    look like a parameter change to Snakemake, so it reruns nothing.
    """
    if isinstance(node, Mapping):
        return {k: _sorted_keys(node[k]) for k in sorted(node)}
    if isinstance(node, list):
        return [_sorted_keys(v) for v in node]
    return node


def _substitute_data_dir(config: dict) -> None:
    ext = config.get("external")
    if not ext:
        return
    paths = [("external.stimuli", ext, "stimuli"), ("external.stimuli_dir", ext, "stimuli_dir")]
    paths += [(f"external.rdms.{k}.path", v, "path") for k, v in ext.get("rdms", {}).items()]
    for k, v in ext.get("responses", {}).items():
        paths.append((f"external.responses.{k}.path", v, "path"))
        if v.get("stimulus_index") and v.get("format", "auto") != "nwb" and str(
                v["path"]).lower().endswith(".npy"):
            paths.append((f"external.responses.{k}.stimulus_index", v, "stimulus_index"))
    for key, node, field in paths:
        if "{data}" in node[field]:
            if not config.get("data"):
                raise ConfigError(
                    f"Config key '{key}' uses {{data}} but 'data' is not set: expected the folder "
                    "that holds the data, e.g. --config data=/path/to/shared/data."
                )
            node[field] = node[field].replace("{data}", str(config["data"]))


def _check_cross_fields(config: dict, base_dir: Path) -> None:
    from brainalign.features import check_model_labels, check_model_spec

    has_bids, has_ext = bool(config.get("bids")), bool(config.get("external"))
    if has_bids == has_ext:
        raise ConfigError(
            "Config keys 'bids' and 'external': expected exactly one to be set (a BIDS dataset, "
            f"or external RDMs plus a stimulus table), got {'both' if has_bids else 'neither'}. "
            "Set the other to null."
        )
    if has_ext and not (config["external"].get("rdms") or config["external"].get("responses")):
        raise ConfigError(
            "Config section 'external' has neither 'rdms' nor 'responses': expected at least "
            "one (brain RDM sets, or response matrices per area). Add one of them.")
    modalities = (config.get("bids") or {}).get("modalities", "auto")
    if has_bids and not config.get("fmri") and "fmri" in modalities:
        raise ConfigError("Config key 'fmri' is required when bids.modalities lists fmri. Add "
                          "the section (see config/config.yaml), or drop fmri from "
                          "bids.modalities.")
    _check_output_dir(config, base_dir)
    if has_bids and config.get("fmri"):
        _check_mask_section(config["fmri"])
        _resolve_fmri_auto(config["fmri"])
        from brainalign.fmri.motion import check_motion_options

        check_motion_options(config["fmri"].get("light", {}))
    for name, spec in config["features"]["models"].items():
        check_model_spec(name, spec, base_dir=base_dir)
    check_model_labels(config["features"]["models"])
    ridge = config["encoding"]["ridge"]
    if len(set(ridge["alphas"])) != len(ridge["alphas"]):
        raise ConfigError(
            f"Config key 'encoding.ridge.alphas' holds repeated values {ridge['alphas']}: "
            "expected distinct penalties. Remove the duplicates."
        )


def _inputs(config: dict, base_dir: Path) -> list[tuple[str, Path]]:
    """Input folders of the configuration (config key, resolved path)."""
    folders = []
    if config.get("bids"):
        bids_dir = base_dir / config["bids"]["bids_dir"]
        folders.append(("bids.bids_dir", bids_dir))
        if config["bids"].get("stimuli_dir"):
            folders.append(("bids.stimuli_dir", base_dir / config["bids"]["stimuli_dir"]))
    if config.get("external"):
        folders.append(("external.stimuli_dir", base_dir / config["external"]["stimuli_dir"]))
    return [(key, Path(os.path.abspath(p))) for key, p in folders]


def _check_output_dir(config: dict, base_dir: Path) -> None:
    """Refuse an output folder that is empty, the filesystem root, or inside an input."""
    raw = str(config["output_dir"]).strip()
    if not raw:
        raise ConfigError(
            "Config key 'output_dir' is empty: expected a folder for the derivatives, e.g. "
            "'results'. Set it in your config file."
        )
    out = Path(os.path.abspath(base_dir / raw))
    if out == Path(out.anchor):
        raise ConfigError(
            f"Config key 'output_dir' is '{raw}', the filesystem root: expected a folder of its "
            "own for the derivatives. Set it to e.g. 'results' or /path/to/study/derivatives."
        )
    for key, folder in _inputs(config, base_dir):
        if out == folder or folder in out.parents:
            where = "is" if out == folder else "is inside"
            raise ConfigError(
                f"Config key 'output_dir' ({out}) {where} the input folder '{key}' ({folder}): "
                "expected a folder outside the raw data, or the derivatives would overwrite its "
                "dataset_description.json and sit among the raw runs. Set output_dir to a "
                f"separate folder, e.g. {folder.parent / (folder.name + '-brainalign')}."
            )


def _resolve_fmri_auto(fmri: dict) -> None:
    """Fill ``fmri.glm.slice_time_ref: null`` (auto) and check ``fmri.fmriprep.confounds``.

    fMRIPrep's slice-timing correction references the middle of each volume (0.5); the light
    path does no slice-timing correction, so volume k is taken at k * TR (0.0). An explicit
    number is kept.
    """
    fmriprep = fmri["preprocessing"] == "fmriprep"
    if fmri["glm"].get("slice_time_ref") is None:
        fmri["glm"]["slice_time_ref"] = 0.5 if fmriprep else 0.0
    if fmriprep:
        from brainalign.fmri.confounds import check_confounds_options

        check_confounds_options(fmri["fmriprep"]["confounds"])


def _check_mask_section(fmri: dict) -> None:
    """``fmri.mask``: a path pattern exactly when the method is ``file``."""
    mask = fmri["mask"]
    if mask["method"] == "file" and not mask.get("path"):
        raise ConfigError(
            "Config key 'fmri.mask.path' is empty but 'fmri.mask.method' is 'file': expected a "
            "mask image per subject, e.g. derivatives/masks/sub-{subject}_mask.nii.gz. Set the "
            "path, or choose method 'data' or 'rois'."
        )
    if mask["method"] != "file" and mask.get("path"):
        raise ConfigError(
            f"Config key 'fmri.mask.path' is set but 'fmri.mask.method' is '{mask['method']}': "
            "expected no path (it is only read with method 'file'). Remove the path or set "
            "method: file."
        )


def resolve_paths(config: Mapping, base_dir: str | Path) -> dict:
    """Make the configuration's relative paths absolute against ``base_dir``.

    Snakemake resolves relative paths against its working directory; the ``brainalign``
    command runs Snakemake in the output folder, so it writes the configuration it passes on
    with every path resolved against the directory the user ran it from.

    Parameters
    ----------
    config : Mapping
        A configuration (not necessarily validated).
    base_dir : str or Path
        Directory the relative paths are relative to.

    Returns
    -------
    config : dict
        A deep copy with absolute ``output_dir``, ``data``, ``bids.bids_dir``,
        ``bids.stimuli_dir``, ``external`` paths (those without ``{data}``) and model weight
        files, and the paths of ``fmri.fmriprep``. ROI and mask paths stay relative: they are
        relative to ``bids.bids_dir``.
    """
    config = copy.deepcopy(dict(config))
    base = Path(base_dir)

    def absolute(node: dict | None, key: str) -> None:
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, str) and value and "{data}" not in value:
            node[key] = os.path.abspath(base / value)

    absolute(config, "output_dir")
    absolute(config, "data")
    bids = config.get("bids")
    absolute(bids, "bids_dir")
    absolute(bids, "stimuli_dir")
    ext = config.get("external")
    if isinstance(ext, dict):
        absolute(ext, "stimuli")
        absolute(ext, "stimuli_dir")
        for spec in (ext.get("rdms") or {}).values():
            absolute(spec, "path")
        for spec in (ext.get("responses") or {}).values():
            absolute(spec, "path")
            if isinstance(spec, dict) and str(spec.get("path", "")).lower().endswith(".npy"):
                absolute(spec, "stimulus_index")  # a file only for .npy responses
    for spec in ((config.get("features") or {}).get("models") or {}).values():
        if isinstance(spec, dict) and spec.get("weights") not in ("shipped", "random"):
            absolute(spec, "weights")
        if isinstance(spec, dict):
            absolute(spec, "code_dir")  # source module: the folder put on sys.path
        for label, ckpt in ((spec.get("checkpoints") if isinstance(spec, dict) else None)
                            or {}).items():
            node = {"weights": ckpt} if isinstance(ckpt, str) else ckpt
            if isinstance(node, dict) and node.get("weights") not in ("shipped", "random"):
                absolute(node, "weights")
                if isinstance(ckpt, str):
                    spec["checkpoints"][label] = node["weights"]
    fmriprep = (config.get("fmri") or {}).get("fmriprep")
    if isinstance(fmriprep, dict):
        for key in ("derivatives", "fs_license", "work_dir", "templateflow_home"):
            absolute(fmriprep, key)
        if fmriprep.get("engine", "apptainer") == "apptainer":  # a .sif file, not an image name
            absolute(fmriprep, "image")
    return config


def load_config(path: str | Path) -> dict:
    """Read a YAML configuration file and validate it.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    config : dict
        Validated configuration with defaults filled in.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"Config file {path} does not exist. Pass an existing file.") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file {path}: expected a YAML mapping, got {type(raw).__name__}.")
    return validate_config(raw, base_dir=Path.cwd())
