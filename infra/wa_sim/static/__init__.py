"""Static files of the simulator page (a package so that package-data ships them)."""
