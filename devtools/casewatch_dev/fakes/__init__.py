"""In-memory fakes: of casewatch's ports (`ports`), of the boto3 clients of the adapters that only send
(`clients`), and of Powertools' idempotency persistence (`powertools`). One set, shared by the local
pipeline's memory backend and the tests."""
