"""The store: DynamoDB, SQS and S3 behind verbs in the product's words (accounts, messages, leases, queues)."""
