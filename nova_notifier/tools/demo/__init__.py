"""A small compute API and hypervisor that show the library at work."""
