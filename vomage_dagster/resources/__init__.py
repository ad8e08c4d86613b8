"""One module per external system; each is a Dagster ConfigurableResource."""
