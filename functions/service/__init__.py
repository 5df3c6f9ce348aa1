"""Domain logic: what the handlers call. No HTTP here, no AWS calls outside the DAL."""
