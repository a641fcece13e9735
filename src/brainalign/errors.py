"""Exception hierarchy: errors name the file/key, what was expected and found, and the fix."""

__all__ = ["BrainAlignError", "ConfigError", "BIDSInputError", "DataShapeError", "ModelError"]


class BrainAlignError(Exception):
    """Base class of every error brainalign raises on purpose."""


class ConfigError(BrainAlignError):
    """The configuration is invalid (unknown key, wrong type, inconsistent values)."""


class BIDSInputError(BrainAlignError):
    """The BIDS dataset (or a derivative it points to) does not hold what the workflow needs."""


class DataShapeError(BrainAlignError):
    """Arrays that must line up (stimuli, voxels, features) do not."""


class ModelError(BrainAlignError):
    """A feature model cannot be built or its weights cannot be found locally."""
