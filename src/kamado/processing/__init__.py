"""Processing jobs: SageMaker CreateProcessingJob, one executor task per instance."""
