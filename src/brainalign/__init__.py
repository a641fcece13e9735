"""brainalign: reproducible brain-model comparison experiments.

The package holds all the logic of the workflow (BIDS ingestion, fMRI responses, DNN features,
encoding models, RSA and the report); the Snakemake rules only call into it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
