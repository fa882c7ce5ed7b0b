"""Named exceptions for meterflow's domain."""

from __future__ import annotations


class MeterflowError(Exception):
    """Base class for every error meterflow raises on purpose."""


class ContractError(MeterflowError):
    """A landing file breaks CONTRACT.md as a whole and is rejected (file, rule and reason in the message)."""


class QualityError(MeterflowError):
    """A critical data-quality expectation failed; the run stops before publishing."""


class PublishError(MeterflowError):
    """The marts could not be built or published; the previously published marts stay."""


class LockError(MeterflowError):
    """Another meterflow run holds the data home's lock."""
