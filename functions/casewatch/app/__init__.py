"""Use cases: what one function invocation does, over the ports (no boto3 here)."""
