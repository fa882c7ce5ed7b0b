"""VEE: validation, estimation and editing of the raw readings into the validated layer."""
