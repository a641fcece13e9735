# A rule script that fails inside brainalign's job_context: a chained exception whose
# message spans two lines.
from brainalign.workflow import job_context

with job_context(snakemake):  # noqa: F821
    try:
        {}["beta"]
    except KeyError as exc:
        raise ValueError("sub-03: run 2 has 0 volumes\nexpected at least 10") from exc
