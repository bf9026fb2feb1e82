"""The domain of the practice platform, shared by every Lambda function as a layer."""
