"""casewatch: consume Amazon Connect Cases events on AWS Lambda."""

__version__ = "0.1.0"
