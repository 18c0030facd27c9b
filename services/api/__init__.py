"""The HTTP API (`kubeingest api`): the second seed's 202 endpoint, health and metrics."""
