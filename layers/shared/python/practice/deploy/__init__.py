"""What a deploy runs inside the stack: the schema migration as a CloudFormation
custom resource (``functions/migrate``)."""
