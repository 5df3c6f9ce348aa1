"""Data access: DynamoDB through PynamoDB, SQS and S3 behind small repositories."""
