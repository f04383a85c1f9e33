"""The data validation gate: Great Expectations suites for the world's Parquet contract.

great_expectations is imported inside the functions that run it, so importing this package is cheap.
"""
from onevision.validation.gate import validate_world
from onevision.validation.limits import ContractLimits, limits_for_world
from onevision.validation.report import DataValidationError, TableCounts, ValidationReport

__all__ = ["ContractLimits", "DataValidationError", "TableCounts", "ValidationReport", "limits_for_world", "validate_world"]
