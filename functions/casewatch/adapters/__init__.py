"""Adapters: the only place boto3 lives (Cases, DynamoDB, SNS, EventBridge, Scheduler)."""
