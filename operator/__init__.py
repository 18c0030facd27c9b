"""The control plane: a kopf operator reconciling IngestionJob resources."""
