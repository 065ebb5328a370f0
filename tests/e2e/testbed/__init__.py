"""Test beds the e2e tests start: real control planes and engines on loopback."""
